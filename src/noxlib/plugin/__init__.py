"""The pytest plugin (entry point ``pytest11``): the only package that imports pytest.

Inside a noxlib run (``NOXLIB_RUN_DIR`` set) `pytest_configure` registers the pieces this
process needs, each a module with one concern: ``results`` (outcomes, starts, timer notes),
``selection`` (the part's share, the books' expectations, worker names), ``order`` (group
markers, ``--affected``'s order, coverage contexts, gc.freeze) and ``servers`` (the
``noxlib_servers`` fixture and its watch). It turns SIGTERM into a clean interrupt. It offers
``record_process`` (reaping) and ``noxlib_servers`` in any pytest run; outside a noxlib run
the rest stays out of the way.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from noxlib.names import WORKER_ENV
from noxlib.plugin.order import _order_and_contexts
from noxlib.plugin.order import pytest_collection_finish as pytest_collection_finish
from noxlib.plugin.order import pytest_collection_modifyitems as pytest_collection_modifyitems
from noxlib.plugin.results import ResultsRecorder, TimerNotes
from noxlib.plugin.selection import (
    WORKER_PART_KEY,
    WORKER_SETTINGS_KEY,
    FileFilter,
    PartSelector,
    ShardIdentity,
    WorkerPart,
    XdistCollection,
)
from noxlib.plugin.servers import noxlib_servers as noxlib_servers
from noxlib.plugin.servers import pytest_sessionstart as pytest_sessionstart
from noxlib.plugin.state import BATCH_KEY, PART_KEY, in_noxlib_run, selected_groups
from noxlib.reaping.runs import RUN_DIR_ENV, RUN_ID_ENV

if TYPE_CHECKING:
    from noxlib.parts import PartFiles


class _Interrupts:
    """The first SIGINT or SIGTERM unwinds the run like Ctrl-C; later ones are ignored so that
    fixture teardown (stopping servers, saving coverage) is not cut short."""

    def __init__(self) -> None:
        self.received = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received = True
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handle)


def pytest_configure(config: pytest.Config) -> None:
    if not in_noxlib_run():
        return
    from noxlib.groups import group_marker

    for name in selected_groups():
        config.addinivalue_line("markers", f"{group_marker(name)}: test of noxlib group {name}")
    _Interrupts().install()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        _configure_worker(config, workerinput)
    else:
        _configure_part(config)


def _configure_worker(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """An xdist worker: its controller records and selects. It runs the tests, though: the
    controller names the part folder for its timer notes, and hands on what the run leaves
    out, runs first and records as contexts."""
    from noxlib.parts import PartFiles

    worker_part = workerinput.get(WORKER_PART_KEY)
    if worker_part:
        _note_timers(config, PartFiles(Path(worker_part)))
    _order_and_contexts(config, workerinput.get(WORKER_SETTINGS_KEY, {}))


def _configure_part(config: pytest.Config) -> None:
    """The process of a part (or a pytest a test started, which gets no part): take the part's
    variables out of the environment, so that no child picks a shard or writes into this part's
    results, and register what the part needs."""
    from noxlib.parts import BATCH_ENV, PART_DIR_ENV, WORKER_SETTINGS, PartFiles, take_part_env

    own = take_part_env(os.environ)
    config.stash[BATCH_KEY] = bool(own.get(BATCH_ENV))
    settings = {key: own[key] for key in WORKER_SETTINGS if key in own}
    _order_and_contexts(config, settings)
    part_dir = own.get(PART_DIR_ENV)
    if not part_dir:
        return
    part = PartFiles(Path(part_dir))
    _register_part(config, part, own, settings)
    config.stash[PART_KEY] = part


def _register_part(
    config: pytest.Config, part: PartFiles, own: dict[str, str], settings: dict[str, str]
) -> None:
    from noxlib.parts import SHARD_FILES_ENV
    from noxlib.reaping.runs import PART_NAME_ENV

    plugins = config.pluginmanager
    name = os.environ.get(PART_NAME_ENV, "")
    plugins.register(ResultsRecorder(part.results, name, part), "noxlib-results")
    files = None
    if own.get(SHARD_FILES_ENV):
        from noxlib.byfile import ShardFiles

        files = ShardFiles.read(Path(own[SHARD_FILES_ENV]))
        plugins.register(FileFilter(files, part), "noxlib-file-filter")
    plugins.register(PartSelector(part, own, files), "noxlib-part")
    _note_timers(config, part)
    if plugins.hasplugin("xdist"):  # its hooks exist only when xdist is loaded
        plugins.register(WorkerPart(str(part.dir), settings), "noxlib-worker-part")
        if getattr(config.option, "numprocesses", None):  # a controller: workers collect
            collection = XdistCollection(part, str(config.rootpath))
            plugins.register(collection, "noxlib-xdist-collection")
    worker = os.environ.get(WORKER_ENV)
    if worker:
        identity = ShardIdentity(worker, os.environ.get(RUN_ID_ENV, ""))
        plugins.register(identity, "noxlib-shard-identity")


def _note_timers(config: pytest.Config, part: PartFiles) -> None:
    if config.pluginmanager.hasplugin("timeout"):
        config.pluginmanager.register(TimerNotes(part), "noxlib-timer-notes")


# --- reaping: public API for tests to record the processes they start ----------------


def record_process(pid: int, *, port: int | None = None, name: str | None = None) -> None:
    """Record process ``pid``, started by a test, in the ledger of the current noxlib run.

    Every process a run starts carries the run id in its environment and is reaped by it;
    call this for one that drops its environment (``env -i``, some daemons) so that it is
    reaped too, even after pytest is killed. ``port`` and ``name`` are shown in the reaping
    log. A no-op outside a noxlib run (``NOXLIB_RUN_DIR`` unset).
    """
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    from noxlib import reaping  # psutil only when a test records a process

    reaping.record_process(Path(run_dir), pid, port=port, name=name)


# --- end of reaping ------------------------------------------------------------------------------
