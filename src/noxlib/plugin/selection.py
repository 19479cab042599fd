"""Which tests this process runs: its part's share (a shard of the plan, a list of ids, its
own files), what it set out to run, and the names xdist gives workers."""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from noxlib.plugin.state import LOADED

if TYPE_CHECKING:
    from noxlib.byfile import ShardFiles
    from noxlib.parts import PartFiles


class PartSelector:
    """Keeps the tests of this process's part: its shard of the plan, or a list of ids, and in a
    shard that splits by file only the items of its own files.

    Registered only inside a part of a noxlib run. It selects after every other plugin has
    deselected (``-k``, ``-m``, groups), so shards balance exactly the tests that will run. What
    the process will really run is written to ``share.jsonl`` once collection is finished,
    after plugins that deselect or reorder last (``--lf``, ``--sw``, ``--ff``): the run's books
    expect a result for each of those ids.
    """

    def __init__(
        self, part: PartFiles, env: Mapping[str, str], files: ShardFiles | None = None
    ) -> None:
        self.part = part
        self.env = env
        self.files = files
        self.event: dict[str, object] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from noxlib import parts

        dropped = []
        if self.files is not None:
            # Items, not only paths: pytest never asks pytest_ignore_collect about the paths
            # named on its command line, nor about the modules that hold shared fixtures.
            # By node id, not only by file: in a file split by function, items that pytest built
            # without asking pytest_pycollect_makeitem (unittest methods, doctests) are kept by
            # the same rule that the other shards apply.
            mine = [self.files.owns(item.nodeid) for item in items]  # once: 60,000 items here
            dropped = [item for item, own in zip(items, mine, strict=True) if not own]
            items[:] = [item for item, own in zip(items, mine, strict=True) if own]
            self._note_left([item.nodeid for item in dropped if self.files.splits(item.nodeid)])
        ids = [item.nodeid for item in items]
        keep, event = parts.choose(self.part, ids, self.env, str(config.rootpath))
        if self.files is not None:  # what it collected is already its share, or the CI shard's
            event["how"] = "files" if event["how"] == "all" else "files, then shard"
            later = event.get("plans")
            event["plans"] = [*self.files.plans, *(later if isinstance(later, list) else [])]
        dropped += [item for item in items if item.nodeid not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid in keep]
        if self.env.get(parts.SELECT_ENV):
            # A list of ids runs in the list's order: a triage rerun repeats the order in
            # which a failed test's company ran, whatever order collection gives.
            from noxlib.idfile import read_ids

            rank = {
                nodeid: i for i, nodeid in enumerate(read_ids(Path(self.env[parts.SELECT_ENV])))
            }
            items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))
        self.event = event

    def _note_left(self, ids: list[str]) -> None:
        # Tests of a file split by function that another shard should run: the books check
        # that one did, so a mistake in the split fails the run instead of losing tests.
        if ids:
            from noxlib.idfile import write_ids

            write_ids(self.part.left, ids)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        ids = [item.nodeid for item in session.items]
        if session.config.option.collectonly:  # listed, not run: the books expect nothing
            from noxlib.idfile import write_ids

            write_ids(self.part.listed, ids)
            ids = []
        self.part.write_share(ids, {**self.event, "count": len(ids)})

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Why tests of the share may not have run: -x, --maxfail, a batch stopped, Ctrl-C.
        stopped = session.shouldfail or session.shouldstop
        event: dict[str, object] = {"event": "finished", "exitstatus": int(exitstatus)}
        if stopped:
            event["stopped"] = str(stopped)
        self.part.event(event)


class XdistCollection:
    """On an xdist controller: the ids its workers collected are the part's collection and its
    share (workers run every collected test), for the run's books."""

    def __init__(self, part: PartFiles, root: str) -> None:
        self.part = part
        self.root = root  # pytest's rootdir, written portably in the collection's digest
        self.seen = False

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.seen:
            return  # xdist itself stops the run when workers collect differently
        self.seen = True
        self.part.write_collected(ids, time.monotonic() - LOADED, self.root)
        self.part.write_share(ids, {"event": "selected", "how": "xdist", "count": len(ids)})


class FileFilter:
    """In a shard that splits by file: pytest collects only this shard's files (directories,
    conftest.py and __init__.py are collected everywhere), and in a file split by function it
    builds the items of only this shard's functions."""

    def __init__(self, share: ShardFiles, part: PartFiles) -> None:
        self.share = share
        self.part = part
        # The files it was asked about, by what it answered (the books compare the shards').
        # Only where the shards are one machine's: a file may go to another CI machine.
        self.noted = len(share.positions) == 1
        self.kept: set[str] = set()
        self.left: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Module | pytest.Class, name: str, obj: object
    ) -> list[pytest.Item] | None:
        # Only what pytest itself would make a Function of, whose items are named
        # "<collector>::<name>[...]": PartSelector keeps exactly those of this shard's
        # functions, so skipping the others here changes what runs by nothing.
        if not self.share.refined or inspect.isclass(obj):
            return None
        if not self.share.splits(collector.nodeid) or not collector.istestfunction(obj, name):
            return None
        return None if self.share.builds(f"{collector.nodeid}::{name}") else []

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if collection_path.is_dir():
            return None
        try:
            path = collection_path.relative_to(config.rootpath).as_posix()
        except ValueError:
            return None  # outside the rootdir: not a file of the plan
        collects = self.share.collects(path)
        if self.noted:
            (self.kept if collects else self.left).add(path)
        # None, not False: False would overrule the user's own --ignore and collect_ignore.
        return None if collects else True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.noted:
            from noxlib.idfile import write_ids

            write_ids(self.part.files_kept, sorted(self.kept))
            write_ids(self.part.files_left, sorted(self.left))


class ShardIdentity:
    """In a shard process, xdist's ``worker_id`` and ``testrun_uid`` fixtures answer as they
    would in an xdist worker (``gw0``, ``gw1``, ...; one id for the whole run), so suites that
    give each worker its own database or folder keep doing so."""

    def __init__(self, worker: str, run_uid: str) -> None:
        self.worker = worker
        self.run_uid = run_uid

    @pytest.fixture(scope="session")
    def worker_id(self) -> str:
        return self.worker

    @pytest.fixture(scope="session")
    def testrun_uid(self) -> str:
        return self.run_uid


WORKER_PART_KEY = "noxlib_part_dir"
WORKER_SETTINGS_KEY = "noxlib_run_settings"


class WorkerPart:
    """On an xdist controller: tells each worker its part's folder and the run's settings for
    the tests (the part variables are taken out of the environment, so that no child process
    writes into the part)."""

    def __init__(self, part_dir: str, settings: Mapping[str, str]) -> None:
        self.part_dir = part_dir
        self.settings = dict(settings)

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_PART_KEY] = self.part_dir
        node.workerinput[WORKER_SETTINGS_KEY] = self.settings
