"""A run as a table of named, timed phases; the post phases run whatever happened before.

Reads like nox's workflow: ``execute((("install", install), ("pytest", run)), post=(...))``.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType

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

        A post step that fails does not stop the next one (the reaper must run even when
        coverage could not combine). The first error (from ``steps``, else from ``post``) is
        raised after all post steps ran; KeyboardInterrupt included.
        """
        first_error: BaseException | None = None
        try:
            with _sigterm_as_interrupt():
                for name, step in steps:
                    self._timed(name, step)
        except BaseException as exc:
            first_error = exc
        for name, step in post:
            try:
                self._timed(name, step)
            except Exception as exc:
                self.log(f"noxlib: post phase '{name}' failed: {exc}")
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Make SIGTERM (a CI job cancelled, ``kill``) unwind like Ctrl-C, so post phases run.

    Python's default SIGTERM action ends the process at once, skipping every ``finally``.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
