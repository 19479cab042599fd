"""The polluter search: which of the tests that ran before an order-dependent test make it fail.

Pure mechanics over a ``fails(before)`` callable that reruns the victim after the tests
``before`` (in their order, in one fresh process) and says whether it failed again: True,
False, or None when the rerun gave no evidence (it skipped, or the budget cut it short). The
callable and the clock come from reruns.py; nothing here starts a process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Fails = Callable[[Sequence[str]], "bool | None"]


class Budget:
    """Seconds that the company reruns and the polluter searches of one run share."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock()

    def left(self) -> float:
        return max(0.0, self.seconds - (self.clock() - self.started))

    def spent(self) -> bool:
        return self.left() <= 0


@dataclass(frozen=True)
class Search:
    """What the search found: ``culprits`` is the polluter when it is one test, else the
    smallest set of the tests before the victim that still made it fail; ``note`` says why
    the search stopped before one test (empty when it got there)."""

    culprits: tuple[str, ...]
    reruns: int
    seconds: float
    note: str = ""

    @property
    def found(self) -> bool:
        return len(self.culprits) == 1

    def describe(self) -> str:
        """``after tests/t.py::test_a (found in 6 reruns, 4.1 s)``, or the smallest set."""
        spent = f"{self.reruns} reruns, {self.seconds:.1f} s"
        if self.found:
            return f"after {self.culprits[0]} (found in {spent})"
        return (
            f"after a set of {len(self.culprits)} tests that ran before it, not narrowed to "
            f"one: {self.note} ({spent})"
        )


def search(before: Sequence[str], fails: Fails, budget: Budget) -> Search:
    """Halve the tests ``before`` the victim until one test is left whose presence makes it
    fail. Each step reruns the victim after one half; the half that still fails is kept. When
    neither half does, the victim needs tests of both (or it is flaky after all) and the set
    is kept as found. The budget is checked before every rerun."""
    suspects = list(before)
    started = budget.clock()
    reruns = 0
    note = ""
    while len(suspects) > 1:
        if budget.spent():
            note = "triage-budget spent"
            break
        middle = len(suspects) // 2
        kept = None
        for half in (suspects[:middle], suspects[middle:]):
            reruns += 1
            verdict = fails(half)
            if verdict is None:
                note = "a rerun gave no evidence (it skipped, or the budget cut it short)"
                break
            if verdict:
                kept = half
                break
        if kept is None:
            note = note or "it fails only after tests of both halves together"
            break
        suspects = kept
    return Search(tuple(suspects), reruns, budget.clock() - started, note)
