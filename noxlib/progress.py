"""What the terminal shows while parts run in the background, and what it shows after.

While several pytest processes run, their output goes to log files and the terminal gets one
progress line: counts so far, elapsed time, ETA. On a terminal the line is redrawn in place; in
a CI log a plain line is printed every few seconds instead. After the run, each failure is
printed in pytest's own words, one after the other.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.outcomes import SHOWN
from noxlib.parts import PartFiles, pricer

if TYPE_CHECKING:
    from noxlib.engine import Part, PartOutcome

LOG_EVERY_SECONDS = 10.0  # a plain progress line this often when the output is not a terminal
REDRAW_EVERY_SECONDS = 0.5
NOT_PASSING = ("failed", "error", "timeout", "crashed", "xpassed")


def clock(seconds: float) -> str:
    """``75.2`` -> ``1:15``."""
    whole = max(0, int(seconds + 0.5))
    return f"{whole // 60}:{whole % 60:02d}"


@dataclass
class _Tail:
    """Reads the lines a part's results file gained since the last look."""

    path: Path
    offset: int = 0
    rest: bytes = b""

    def new_lines(self) -> list[dict[str, object]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *complete, self.rest = (self.rest + data).split(b"\n")
        lines = []
        for raw in complete:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines


@dataclass(frozen=True)
class Expected:
    """What the parts selected, as far as they have said: tests, and their predicted seconds
    (0 when nothing was recorded)."""

    tests: int = 0
    seconds: float = 0.0


@dataclass
class Progress:
    """Counts the results of ``parts`` as they land and draws the progress line on ``write``.

    ``tty`` redraws one line in place; otherwise a line every LOG_EVERY_SECONDS. ``price`` (a
    test's predicted seconds, as the shards priced it) makes the ETA one of time, not of test
    count: with one test of a minute among many of milliseconds, counting tests misleads.
    """

    parts: Sequence[PartFiles]
    write: Callable[[str], object]
    tty: bool
    price: Callable[[str], float] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    done_seconds: float = 0.0  # the predicted seconds of the tests done so far
    _tails: list[_Tail] = field(default_factory=list)
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
        self._tails = [_Tail(files.results) for files in self.parts]
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
        for tail in self._tails:
            for result in tail.new_lines():
                self.counts[str(result.get("outcome"))] += 1
                if self.price is not None:
                    self.done_seconds += self.price(str(result.get("nodeid")))
        every = REDRAW_EVERY_SECONDS if self.tty else LOG_EVERY_SECONDS
        if elapsed - self._last_drawn < every:
            return
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
        eta = ""
        if 0 < done < expected.tests:
            eta = f", ETA {clock(self.remaining(elapsed, done, expected))}"
        of = f"/{expected.tests}" if expected.tests else ""
        return f"noxlib: {done}{of} tests ({shown or 'none finished yet'}), {clock(elapsed)}{eta}"

    def remaining(self, elapsed: float, done: int, expected: Expected) -> float:
        """Seconds left: by the recorded time of what is done and what is left, when the
        durations know the run; else by the count of tests."""
        if 0 < self.done_seconds < expected.seconds:
            return elapsed * (expected.seconds - self.done_seconds) / self.done_seconds
        return elapsed * (expected.tests - done) / done

    def close(self) -> None:
        """End the progress line so the next output starts on a line of its own."""
        if self.tty and self._width:
            self.write("\r" + " " * self._width + "\r")


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
