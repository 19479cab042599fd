"""pytest-timeout's two ways of stopping a test, told apart from other failures and deaths.

The ``signal`` method fails the test with ``pytest.fail("Timeout (>2.0s) from
pytest-timeout.")`` (releases before 2.2 wrote "Timeout >2.0s"): the plugin reads that from the
failure's crash line (``reprcrash``), which is exactly "Failed: " and that message. Any other
text of the failure, an assertion message quoting those words included, is the test's own. The
``thread`` method prints a "Timeout" banner with every thread's stack and ends the whole pytest
process with ``os._exit(1)``: the test gets no report at all, and its death looks like any other
crash. So the plugin notes the start of each test that runs under the thread method, with its
limit, in the part's meta file; whoever sees the process (or xdist worker) die calls it a
timeout when the test it was running had outlived that limit.

Pure: the events and the log text come in as arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

STARTED_EVENT = "timer"
THREAD_METHOD = "thread"
# A death noticed within this many seconds before the limit is still the timer's doing: the
# two clocks read are the same wall clock, but in two processes.
SLACK_SECONDS = 0.1
_SIGNAL_MESSAGE = re.compile(r"Failed: Timeout (\(>[0-9.]+s\) from pytest-timeout\.|>[0-9.]+s)")
# Not anchored at the start: the first banner follows pytest's progress dots on their line.
_BANNER = re.compile(r"\+{3,} Timeout \+{3,}$", re.M)
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)', re.M)
MAX_EXCERPT = 8_000


def is_timeout_failure(crash_message: str) -> bool:
    """Whether a failure whose crash line (pytest's ``reprcrash.message``) is ``crash_message``
    is pytest-timeout's signal method stopping the test."""
    return bool(_SIGNAL_MESSAGE.fullmatch(crash_message.strip()))


def timer_event(nodeid: str, method: str, seconds: float, now: float) -> dict[str, object]:
    """The meta event that says test ``nodeid`` started under a ``method`` timer of
    ``seconds`` at wall-clock time ``now``."""
    return {
        "event": STARTED_EVENT,
        "nodeid": nodeid,
        "method": method,
        "seconds": seconds,
        "at": now,
    }


def thread_timeout(
    events: Iterable[Mapping[str, object]], nodeid: str, died_at: float
) -> float | None:
    """The limit in seconds when test ``nodeid``, found dead at wall-clock time ``died_at``,
    was stopped by pytest-timeout's thread method; None when its death was something else.

    ``events`` are the part's meta events; the last timer event of ``nodeid`` counts (a test
    rerun after a crash has a newer one).
    """
    last = None
    for event in events:
        if event.get("event") == STARTED_EVENT and event.get("nodeid") == nodeid:
            last = event
    if last is None or last.get("method") != THREAD_METHOD:
        return None
    try:
        seconds, at = float(str(last["seconds"])), float(str(last["at"]))
    except (KeyError, ValueError):
        return None
    return seconds if died_at + SLACK_SECONDS >= at + seconds else None


def banner_excerpt(log: str) -> str:
    """What the thread method printed between its last two "Timeout" banners (the stacks of
    every thread), or "" when the log holds no such block."""
    marks = list(_BANNER.finditer(log))
    if len(marks) < 2:
        return ""
    text = log[marks[-2].start() : marks[-1].end()]
    return text if len(text) <= MAX_EXCERPT else text[:200] + "\n[...]\n" + text[-MAX_EXCERPT:]


def main_thread_frames(excerpt: str) -> list[list[object]]:
    """[[path, lineno], ...] of the main thread's stack in a thread-method excerpt, outermost
    first, as the plugin records a failure's frames."""
    start = excerpt.find("Stack of MainThread")
    if start < 0:
        return []
    end = excerpt.find("Stack of ", start + 1)
    block = excerpt[start : end if end > 0 else len(excerpt)]
    return [[path, int(line)] for path, line in _FRAME.findall(block)]
