"""What the plugin does to collected items: group markers, what ``--affected`` leaves out and
runs first, the map's contexts switched on (``contexts.py``), the collection noted for the
books, and gc.freeze."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from noxlib.plugin.state import LOADED, PART_KEY, in_noxlib_run, selected_groups

# --- --affected: leave out what a change cannot reach, last failures first, the map's contexts


class RunOrder:
    """Leaves out the tests ``--affected`` found the change cannot reach, and puts the tests
    that failed in the last run of the session first.

    Every process that collects applies the same lists to the same items, so shards plan from
    the same tests, and xdist workers agree on their collection. It runs before the shard
    selector (trylast), which keeps the order it finds.
    """

    def __init__(self, skip: set[str], first: set[str], uncollected: set[str]) -> None:
        self.skip = skip
        self.first = first
        self.uncollected = uncollected

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        # A file with no test the change can reach, vouched for by the map: not imported at
        # all, which is most of a selected run's time on a large suite. None: pytest decides.
        return True if str(collection_path) in self.uncollected else None

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from noxlib.runorder import run_first

        if self.skip:
            dropped = [item for item in items if item.nodeid in self.skip]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = [item for item in items if item.nodeid not in self.skip]
        if self.first:
            order = run_first([item.nodeid for item in items], self.first)
            items[:] = [items[i] for i in order]


def _order_and_contexts(config: pytest.Config, settings: Mapping[str, str]) -> None:
    from noxlib.idfile import read_ids
    from noxlib.parts import CONTEXTS_ENV, FIRST_ENV, SKIP_ENV, UNCOLLECTED_ENV

    def ids(key: str) -> set[str]:
        return set(read_ids(Path(settings[key]))) if settings.get(key) else set()

    skip, first, uncollected = ids(SKIP_ENV), ids(FIRST_ENV), ids(UNCOLLECTED_ENV)
    if skip or first or uncollected:
        order = RunOrder(skip, first, uncollected)
        config.pluginmanager.register(order, "noxlib-run-order")
    if settings.get(CONTEXTS_ENV):
        cov = _running_coverage()
        if cov is not None:
            from noxlib.plugin.contexts import TestContexts

            contexts = TestContexts(cov, Path(settings[CONTEXTS_ENV]))
            config.pluginmanager.register(contexts, "noxlib-test-contexts")


def _running_coverage() -> Any:
    """The coverage measuring this process (``coverage run``, or its subprocess patch in an
    xdist worker), or None."""
    try:
        import coverage
    except ImportError:
        return None
    return coverage.Coverage.current()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the group markers must be on the items before pytest's own -m deselection, and
    # what was collected is noted before anything is deselected (the durations file forgets
    # tests a run no longer collects).
    if not in_noxlib_run():
        return
    from noxlib.groups import group_marker

    for name, roots in selected_groups().items():
        marker = group_marker(name)
        for item in items:
            if any(_is_under(item.path, root) for root in roots):
                item.add_marker(marker)
    part = config.stash.get(PART_KEY, None)
    if part is not None:
        ids = [item.nodeid for item in items]
        part.write_collected(ids, time.monotonic() - LOADED, str(config.rootpath))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Take what collection built (items, modules, fixtures' definitions: they live until the
    end) out of the garbage collector's rounds. With tens of thousands of items, every later
    full collection walks them all; frozen, they are not walked again. A round first frees the
    garbage collection made, so nothing but live objects is frozen."""
    from noxlib.parts import GC_FREEZE_ENV

    if in_noxlib_run() and os.environ.get(GC_FREEZE_ENV) == "1":
        import gc

        gc.collect()
        gc.freeze()


def _is_under(path: Path, root: str) -> bool:
    return path == Path(root) or Path(root) in path.parents
