"""Each test's outcome, duration and failure text, written to the part's results file as it
ends; the start of each test, as it begins; and the timers of pytest-timeout's thread method."""

from __future__ import annotations

import io
import json
import os
import time
from json.encoder import encode_basestring_ascii as _quoted
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from noxlib.idfile import append_id
from noxlib.timeouts import is_timeout_failure

if TYPE_CHECKING:
    from noxlib.parts import PartFiles


class ResultsRecorder:
    """Appends one JSON line per finished test to the part's results file; a line is written
    as soon as its test ends, so a process killed half-way still reports what it did.

    The outcome is an `outcomes.Outcome`: a collection error counts as an error of its file,
    a test that pytest-timeout stopped as ``timeout``, one whose xdist worker died as
    ``crashed``. Failures carry pytest's own text of them, for the run's summary and triage.

    This runs for every test of the suite, so it does little: each line is one unbuffered
    ``write(2)`` (once it returns the kernel holds the line, whatever then kills the process;
    a buffer of lines would die with it), and a passing test's line is encoded without the
    failure machinery.
    """

    def __init__(self, path: Path, part: str, files: PartFiles | None = None) -> None:
        from noxlib.idfile import open_append

        self.part = part
        self.files = files  # the part's folder: where thread-method timers are noted
        self.path = path
        self.out = open_append(path)
        self.started = open_append(files.started) if files else None
        self.partial: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        # Before the test's setup: a process that dies in it leaves this line as the proof of
        # which test it was running, whatever order plugins gave the tests (--ff, --sw, ...).
        if self.started is not None:
            append_id(self.started, nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        when = report.when
        if when not in ("setup", "call", "teardown"):
            # xdist's report for a test whose worker died: the only report that test gets.
            self._write(
                report, {"duration": report.duration, "outcome": self._death(report)}, report
            )
            return
        entry = self.partial.get(report.nodeid)
        if entry is None:
            entry = self.partial[report.nodeid] = {"duration": 0.0, "outcome": None}
        entry["duration"] += report.duration
        passed = report.passed
        if not passed and "failure" not in entry and not report.skipped:
            entry["failure"] = report
        if when == "setup":
            if not passed:
                entry["outcome"] = "error" if report.failed else "skipped"
        elif when == "call":
            if hasattr(report, "wasxfail"):
                entry["outcome"] = "xfailed" if report.skipped else "xpassed"
            else:
                entry["outcome"] = report.outcome
        else:
            if report.failed and entry["outcome"] in (None, "passed"):
                entry["outcome"] = "error"
            del self.partial[report.nodeid]
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
        nodeid, worker = report.nodeid, _worker_of(report) or self.part
        duration = round(entry["duration"], 6)
        if failure is None or outcome in QUIET_OUTCOMES:
            # The line json.dumps would write, without building the dict: most tests pass.
            text = (
                f'{{"nodeid": {_quoted(nodeid)}, "outcome": "{outcome}", '
                f'"duration": {duration!r}, "worker": {_quoted(worker)}}}\n'
            )
        else:
            line = {"nodeid": nodeid, "outcome": outcome, "duration": duration, "worker": worker}
            line.update(_failure_details(failure))
            crash = line.get("crash", {}).get("message", "")
            if outcome == "failed" and is_timeout_failure(crash):
                line["outcome"] = "timeout"
            text = json.dumps(line) + "\n"
        os.write(self.out, text.encode("ascii"))

    def _death(self, report: pytest.TestReport) -> str:
        """``timeout`` when the dead worker's test had outlived a thread-method timer (which
        ends the process), else ``crashed``."""
        if self.files is None:
            return "crashed"
        from noxlib.timeouts import thread_timeout

        limit = thread_timeout(self.files.events(), report.nodeid, time.time())
        return "crashed" if limit is None else "timeout"

    def pytest_unconfigure(self) -> None:
        os.close(self.out)
        if self.started is not None:
            os.close(self.started)


MAX_LONGREPR = 20_000
# Outcomes whose line carries no failure text.
QUIET_OUTCOMES = frozenset({"passed", "skipped", "xfailed", "xpassed"})


def _worker_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    node = getattr(report, "node", None)  # set by xdist on the controller only
    if node is None:
        return ""
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
