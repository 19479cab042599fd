"""What the terminal shows while parts run in the background, and what it shows after.

While several pytest processes run, their output goes to log files and the terminal gets one
progress line: counts so far, elapsed time, ETA. On a terminal the line is redrawn in place; in
a CI log a plain line is printed every few seconds instead. After the run, each failure is
printed in pytest's own words, one after the other.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from noxlib.jsonlines import Tail
from noxlib.outcomes import SHOWN
from noxlib.parts import PartFiles, pricer
from noxlib.words import plural

if TYPE_CHECKING:
    from noxlib.partrun import Part, PartOutcome

LOG_EVERY_SECONDS = 10.0  # a plain progress line this often when the output is not a terminal
REDRAW_EVERY_SECONDS = 0.5
NOT_PASSING = ("failed", "error", "timeout", "crashed", "xpassed")


def clock(seconds: float) -> str:
    """``75.2`` -> ``1:15``."""
    whole = max(0, int(seconds + 0.5))
    return f"{whole // 60}:{whole % 60:02d}"


@dataclass(frozen=True)
class Expected:
    """What the parts selected, as far as they have said: tests, and their predicted seconds
    (0 when nothing was recorded)."""

    tests: int = 0
    seconds: float = 0.0


@dataclass
class _Running:
    """The test a part is running: the last one it started that has no result yet."""

    nodeid: str
    since: float  # elapsed seconds when the start was seen


@dataclass
class Progress:
    """Counts the results of ``parts`` as they land and draws the progress line on ``write``.

    ``tty`` redraws one line in place; otherwise a line every LOG_EVERY_SECONDS, and a last one
    at the end. ``price`` (a test's predicted seconds, as the shards priced it) makes the ETA
    one of time, not of test count: with one test of a minute among many of milliseconds,
    counting tests misleads.

    The ETA is estimated when a result lands, at the pace so far, and then counts down: the
    time a running test has taken counts against what is left, so the ETA never grows while
    nothing new has finished. Once it has run out with tests left, the line names the test that
    has been running longest, and for how long, instead of an ETA.
    """

    parts: Sequence[PartFiles]
    write: Callable[[str], object]
    tty: bool
    price: Callable[[str], float] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    # Files that did not import: a result of their own, but no test of the selected count.
    unimported: set[str] = field(default_factory=set)
    done_seconds: float = 0.0  # the predicted seconds of the tests done so far
    _tails: list[Tail] = field(default_factory=list)
    _started: list[Tail] = field(default_factory=list)
    _running: dict[int, _Running] = field(default_factory=dict)
    _estimate: tuple[float, float] | None = None  # (when, seconds left then)
    _last_drawn: float = -1e9
    _width: int = 0

    @classmethod
    def of_parts(cls, parts: Sequence[Part], durations: Mapping[str, float]) -> Progress | None:
        """The progress line of a run's ``parts`` on stdout; None when every part prints to the
        terminal itself. Priced as the shards price their share: the ETA is one of time."""
        if all(part.passthrough for part in parts):
            return None
        price = pricer(durations) if durations else None
        files = [part.files for part in parts]
        return cls(files, sys.stdout.write, tty=sys.stdout.isatty(), price=price)

    def __post_init__(self) -> None:
        self._tails = [Tail(files.results) for files in self.parts]
        self._started = [Tail(files.started) for files in self.parts]
        if not self.tty:
            self._last_drawn = 0.0  # a log's first line comes after LOG_EVERY_SECONDS

    def expected(self) -> Expected:
        tests, seconds = 0, 0.0
        for files in self.parts:
            selected = [e for e in files.events() if e.get("event") == "selected"]
            if selected:
                tests += int(str(selected[0].get("count", 0)))
                seconds += float(str(selected[0].get("predicted", 0.0)))
        return Expected(tests, seconds)

    def tick(self, elapsed: float) -> None:
        if self._read(elapsed):
            expected = self.expected()
            done = sum(self.counts.values())
            if 0 < done < expected.tests:
                self._estimate = (elapsed, self.remaining(elapsed, done, expected))
        every = REDRAW_EVERY_SECONDS if self.tty else LOG_EVERY_SECONDS
        if elapsed - self._last_drawn < every:
            return
        self._draw(elapsed)

    def _read(self, elapsed: float) -> bool:
        """Take in the starts and results that landed; whether any result did."""
        for index, tail in enumerate(self._started):
            for nodeid in tail.new_lines():
                if isinstance(nodeid, str):
                    self._running[index] = _Running(nodeid, elapsed)
        landed = False
        for index, tail in enumerate(self._tails):
            for result in tail.new_lines():
                if not isinstance(result, dict):
                    continue
                landed = True
                nodeid = str(result.get("nodeid"))
                if "::" not in nodeid:
                    self.unimported.add(nodeid)  # two shards may report one such file
                    continue
                self.counts[str(result.get("outcome"))] += 1
                if self.price is not None:
                    self.done_seconds += self.price(nodeid)
                running = self._running.get(index)
                if running is not None and running.nodeid == nodeid:
                    del self._running[index]
        return landed

    def _draw(self, elapsed: float) -> None:
        self._last_drawn = elapsed
        line = self.line(elapsed, self.expected())
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.write("\r" + line[:width].ljust(self._width) + "\r")
            self._width = min(len(line), width)
        else:
            self.write(line + "\n")

    def line(self, elapsed: float, expected: Expected) -> str:
        done = sum(self.counts.values())
        shown = ", ".join(f"{self.counts[s]} {s}" for s in map(str, SHOWN) if self.counts[s])
        of = f"/{expected.tests}" if expected.tests else ""
        line = f"noxlib: {done}{of} tests ({shown or 'none finished yet'}), "
        if self.unimported:
            line += f"{plural(len(self.unimported), 'file')} did not import, "
        line += clock(elapsed)
        return line + (self._outlook(elapsed) if 0 < done < expected.tests else "")

    def _outlook(self, elapsed: float) -> str:
        """``, ETA 0:12`` while the estimate lasts; then ``, running X for 40 s``."""
        if self._estimate is not None:
            when, left = self._estimate
            if left - (elapsed - when) >= 0.5:  # what clock() would show as 0:00 has run out
                return f", ETA {clock(left - (elapsed - when))}"
        if not self._running:
            return ""
        longest = min(self._running.values(), key=lambda running: running.since)
        return f", running {longest.nodeid} for {elapsed - longest.since:.0f} s"

    def remaining(self, elapsed: float, done: int, expected: Expected) -> float:
        """Seconds left: by the recorded time of what is done and what is left, when the
        durations know the run; else by the count of tests."""
        if 0 < self.done_seconds < expected.seconds:
            return elapsed * (expected.seconds - self.done_seconds) / self.done_seconds
        return elapsed * (expected.tests - done) / done

    def close(self, elapsed: float | None = None) -> None:
        """End the progress line so the next output starts on a line of its own. In a log, a
        last line with the final counts, so the log does not stop at, say, 885/980."""
        if self.tty and self._width:
            self.write("\r" + " " * self._width + "\r")
        elif not self.tty and elapsed is not None:
            self._read(elapsed)
            self._draw(elapsed)


def failure_text(result: Mapping[str, object], width: int = 100) -> str:
    """One failure as pytest prints it: a headline with the node id, its longrepr, its captured
    output sections."""
    title = f" {result.get('nodeid')} [{result.get('outcome')}] "
    pad = max(3, (width - len(title)) // 2)
    lines = ["_" * pad + title + "_" * pad, str(result.get("longrepr", "")).rstrip()]
    for section in result.get("sections", []) or []:  # type: ignore[attr-defined]
        name, content = section
        dash = max(3, (width - len(name) - 2) // 2)
        lines += ["-" * dash + f" {name} " + "-" * dash, str(content).rstrip()]
    return "\n".join(lines)


def failures_report(results: Iterable[Mapping[str, object]], width: int = 100) -> str:
    """Every result that did not pass, in pytest's words, then a short summary line each."""
    bad = [r for r in results if r.get("outcome") in NOT_PASSING]
    if not bad:
        return ""
    blocks = [_banner("FAILURES", width)] + [failure_text(r, width) for r in bad]
    blocks.append(_banner("short test summary info", width))
    for r in bad:
        crash = r.get("crash")
        message = crash.get("message", "") if isinstance(crash, dict) else ""
        first = str(message).splitlines()[0] if message else ""
        reason = f" - {first}" if first else ""
        blocks.append(f"{str(r.get('outcome')).upper()} {r.get('nodeid')}{reason}")
    return "\n".join(blocks) + "\n"


def _banner(title: str, width: int) -> str:
    pad = max(3, (width - len(title) - 2) // 2)
    return f"{'=' * pad} {title} {'=' * pad}"


def outcome_lines(outcome: PartOutcome) -> list[str]:
    """Why a part ended early, and which tests its dead processes cost, one line each."""
    lines = [outcome.problem] if outcome.problem else []
    lines += [
        f"its pytest process died while running {nodeid} (reported as crashed); the rest of "
        "its tests ran in a new one"
        for nodeid in outcome.crashed
    ]
    lines += [
        f"pytest-timeout's thread method ended its process in {nodeid} (reported as timeout); "
        "the rest ran in a new one"
        for nodeid in outcome.timed_out
    ]
    return lines
