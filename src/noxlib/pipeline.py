"""A run as a table of named, timed phases; the post phases run whatever happened before, and
run to the end.

Reads like nox's workflow: ``execute((("install", install), ("pytest", run)), post=(...))``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

Step = tuple[str, Callable[[], object]]


@dataclass(frozen=True)
class PhaseTiming:
    """How long phase ``name`` took and whether it finished without raising."""

    name: str
    seconds: float
    ok: bool


@dataclass
class Pipeline:
    """Runs steps and records each one's timing, in order, into ``timings``."""

    log: Callable[[str], object] = print
    timings: list[PhaseTiming] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _timed(self, name: str, step: Callable[[], object]) -> None:
        start = time.perf_counter()
        ok = False
        try:
            step()
            ok = True
        finally:
            self.timings.append(PhaseTiming(name, time.perf_counter() - start, ok))

    def execute(self, steps: Sequence[Step], post: Sequence[Step]) -> None:
        """Run ``steps`` in order, stopping at the first that raises; then every ``post`` step.

        SIGTERM unwinds the steps like Ctrl-C. The post steps are never cut short: a post step
        that fails does not stop the next one (the reaper must run even when coverage could
        not combine), and SIGINT and SIGTERM are held back while they run, so that a second
        Ctrl-C cannot stop the reaper half-way and leave processes running that nothing
        remembers. The first error (from ``steps``, else from ``post``, else a held-back
        signal as KeyboardInterrupt) is raised after all post steps ran.
        """
        first_error: BaseException | None = None
        with _Signals() as signals:
            try:
                try:
                    for name, step in steps:
                        self._timed(name, step)
                finally:
                    signals.hold()
            except BaseException as exc:
                first_error = exc
            for name, step in post:
                try:
                    self._timed(name, step)
                except BaseException as exc:
                    why = str(exc) or type(exc).__name__
                    self.log(f"noxlib: post phase '{name}' failed: {why}")
                    first_error = first_error or exc
        if signals.held:
            self.log(f"noxlib: {signals.held} came during the post phases, which ran to the end")
            first_error = first_error or KeyboardInterrupt(f"signal {signals.held}")
        if first_error is not None:
            raise first_error


class _Signals:
    """SIGINT and SIGTERM while a pipeline runs.

    During the steps each unwinds like Ctrl-C: Python's default SIGTERM action ends the process
    at once, skipping every ``finally`` (a CI job cancelled, ``kill``). Once `hold` is called
    they are only noted in ``held``, for the caller to raise when its post steps are done.
    Outside the main thread, where no handler can be installed, nothing changes.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.holding = False
        self.held: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        try:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def hold(self) -> None:
        self.holding = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.holding:
            self.held = self.held or name
            return
        raise KeyboardInterrupt(f"signal {name}")
