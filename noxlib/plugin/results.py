"""Each test's outcome, duration and failure text, written to the part's results file as it
ends; the start of each test, as it begins; and the timers of pytest-timeout's thread method."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from noxlib.timeouts import is_timeout_failure

if TYPE_CHECKING:
    from noxlib.parts import PartFiles


class ResultsRecorder:
    """Appends one JSON line per finished test to the part's results file; a line is written
    as soon as its test ends, so a process killed half-way still reports what it did.

    The outcome is an `outcomes.Outcome`: a collection error counts as an error of its file,
    a test that pytest-timeout stopped as ``timeout``, one whose xdist worker died as
    ``crashed``. Failures carry pytest's own text of them, for the run's summary and triage.
    """

    def __init__(self, path: Path, part: str, files: PartFiles | None = None) -> None:
        self.part = part
        self.files = files  # the part's folder: where thread-method timers are noted
        # Line-buffered: one write per test, and nothing lost when the process dies.
        self.out = path.open("a", encoding="utf-8", buffering=1)
        self.started = files.started.open("a", encoding="utf-8", buffering=1) if files else None
        self.partial: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        # Before the test's setup: a process that dies in it leaves this line as the proof of
        # which test it was running, whatever order plugins gave the tests (--ff, --sw, ...).
        if self.started is not None:
            from noxlib.idfile import append_id

            append_id(self.started, nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when not in ("setup", "call", "teardown"):
            # xdist's report for a test whose worker died: the only report that test gets.
            self._write(
                report, {"duration": report.duration, "outcome": self._death(report)}, report
            )
            return
        entry = self.partial.setdefault(report.nodeid, {"duration": 0.0, "outcome": None})
        entry["duration"] += report.duration
        if not report.passed and "failure" not in entry and not report.skipped:
            entry["failure"] = report
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
            entry = self.partial.pop(report.nodeid)
            self._write(report, entry, entry.get("failure"))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(report, {"duration": 0.0, "outcome": "error"}, report)

    def _write(
        self,
        report: pytest.TestReport | pytest.CollectReport,
        entry: dict[str, Any],
        failure: pytest.TestReport | pytest.CollectReport | None,
    ) -> None:
        outcome = entry["outcome"] or "passed"
        line: dict[str, Any] = {
            "nodeid": report.nodeid,
            "outcome": outcome,
            "duration": round(entry["duration"], 6),
            "worker": _worker_of(report) or self.part,
        }
        if failure is not None and outcome not in ("passed", "skipped", "xfailed", "xpassed"):
            line.update(_failure_details(failure))
            crash = line.get("crash", {}).get("message", "")
            if outcome == "failed" and is_timeout_failure(crash):
                line["outcome"] = "timeout"
        self.out.write(json.dumps(line) + "\n")

    def _death(self, report: pytest.TestReport) -> str:
        """``timeout`` when the dead worker's test had outlived a thread-method timer (which
        ends the process), else ``crashed``."""
        if self.files is None:
            return "crashed"
        from noxlib.timeouts import thread_timeout

        limit = thread_timeout(self.files.events(), report.nodeid, time.time())
        return "crashed" if limit is None else "timeout"

    def pytest_unconfigure(self) -> None:
        self.out.close()
        if self.started is not None:
            self.started.close()


MAX_LONGREPR = 20_000


def _worker_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    node = getattr(report, "node", None)  # set by xdist on the controller
    return str(getattr(getattr(node, "gateway", None), "id", ""))


def _longrepr_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    """``report.longreprtext`` as pytest prints it: longreprtext strips the text, and with it
    the indentation of its first line ("    def test_x():")."""
    try:
        from _pytest._io import TerminalWriter  # what longreprtext itself writes with
    except ImportError:  # pragma: no cover - a pytest that moved it
        return report.longreprtext
    file = io.StringIO()
    writer = TerminalWriter(file)
    writer.hasmarkup = False
    report.toterminal(writer)
    return file.getvalue().strip("\n").rstrip()


def _failure_details(report: pytest.TestReport | pytest.CollectReport) -> dict[str, Any]:
    """pytest's text of a failure, its captured output, and where it was raised."""
    text = _longrepr_text(report)
    if len(text) > MAX_LONGREPR:
        half = MAX_LONGREPR // 2
        text = f"{text[:half]}\n[... cut by noxlib ...]\n{text[-half:]}"
    details: dict[str, Any] = {
        "when": report.when if isinstance(report, pytest.TestReport) else "collect",
        "longrepr": text,
        "sections": [[title, content[-MAX_LONGREPR:]] for title, content in report.sections],
    }
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        details["crash"] = {"path": crash.path, "lineno": crash.lineno, "message": crash.message}
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", [])
    frames = [[loc.path, loc.lineno] for e in entries if (loc := getattr(e, "reprfileloc", None))]
    if frames:
        details["frames"] = frames[-30:]
    return details


class TimerNotes:
    """Notes the start of each test that runs under pytest-timeout's thread method, with its
    limit, in the part's meta file: that method ends the process without a report, and the
    note is how the engine (or the xdist controller) tells its death from a crash.

    Registered only when pytest-timeout is loaded; tests under the signal method, or without
    a timeout, cost nothing.
    """

    def __init__(self, part: PartFiles) -> None:
        self.part = part

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> None:
        from noxlib.timeouts import THREAD_METHOD, timer_event

        if getattr(settings, "method", None) == THREAD_METHOD:
            event = timer_event(item.nodeid, THREAD_METHOD, float(settings.timeout), time.time())
            self.part.event(event)
        # None: pytest-timeout's own implementation (firstresult) still starts the timer.
