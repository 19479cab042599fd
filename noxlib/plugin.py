"""The pytest plugin (entry point ``pytest11``): the only module that imports pytest.

Inside a noxlib run (``NOXLIB_RUN_DIR`` set) it marks items by group, records each test's
outcome and duration for the timing report, and turns SIGTERM into a clean interrupt. Outside a
noxlib run it stays out of the way.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from noxlib.plan import GROUPS_ENV, group_marker
from noxlib.runs import RUN_DIR_ENV

RESULTS_FILE = "results.jsonl"


class ResultsRecorder:
    """Appends one JSON line per finished test; a line is written as soon as its test ends,
    so a run killed half-way still reports what it did."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.partial.setdefault(report.nodeid, {"duration": 0.0, "outcome": None})
        entry["duration"] += report.duration
        if report.when == "setup" and not report.passed:
            entry["outcome"] = "error" if report.failed else "skipped"
        elif report.when == "call":
            if hasattr(report, "wasxfail"):
                entry["outcome"] = "xfailed" if report.skipped else "xpassed"
            else:
                entry["outcome"] = report.outcome
        elif report.when == "teardown":
            if report.failed and entry["outcome"] in (None, "passed"):
                entry["outcome"] = "error"
            self._write(report, self.partial.pop(report.nodeid))

    def _write(self, report: pytest.TestReport, entry: dict[str, Any]) -> None:
        node = getattr(report, "node", None)  # set by xdist on the controller
        worker = getattr(getattr(node, "gateway", None), "id", "")
        line = {
            "nodeid": report.nodeid,
            "outcome": entry["outcome"] or "passed",
            "duration": round(entry["duration"], 6),
            "worker": worker,
        }
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


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


def _in_noxlib_run() -> bool:
    return bool(os.environ.get(RUN_DIR_ENV))


def _selected_groups() -> dict[str, list[str]]:
    try:
        groups = json.loads(os.environ.get(GROUPS_ENV, "{}"))
    except ValueError:
        return {}
    return groups if isinstance(groups, dict) else {}


def pytest_configure(config: pytest.Config) -> None:
    if not _in_noxlib_run():
        return
    for name in _selected_groups():
        config.addinivalue_line("markers", f"{group_marker(name)}: test of noxlib group {name}")
    _Interrupts().install()
    if not hasattr(config, "workerinput"):  # serial run or xdist controller: the one recorder
        recorder = ResultsRecorder(Path(os.environ[RUN_DIR_ENV]) / RESULTS_FILE)
        config.pluginmanager.register(recorder, "noxlib-results")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the group markers must be on the items before pytest's own -m deselection.
    groups = _selected_groups() if _in_noxlib_run() else {}
    for name, roots in groups.items():
        marker = group_marker(name)
        for item in items:
            if any(_is_under(item.path, root) for root in roots):
                item.add_marker(marker)


def _is_under(path: Path, root: str) -> bool:
    return path == Path(root) or Path(root) in path.parents


# --- reaping (issue 3): public API for tests to record the processes they start ----------------


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
