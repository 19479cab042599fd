"""Every outcome a test can end with, and which of two is worse. Defined once, here.

``str``-valued, so that results files and reports hold the same words as before.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    # Collected, in a part's share, and never reported: the books name the reason.
    NOT_RUN = "not-run"

    def __str__(self) -> str:
        return self.value


# The order in which outcomes are shown (the counts line, the report's table).
SHOWN = tuple(Outcome)
FAILING = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASHED})
# Tests that ran to their end (their coverage is whole: the --affected map may trust it).
COMPLETE = frozenset(
    {Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED}
)
# Outcomes whose duration says what a test costs (a crash or a collection error says nothing).
TIMED = frozenset({*COMPLETE, Outcome.ERROR, Outcome.TIMEOUT})
# Worst first: when one test has two outcomes (a conflict), the worse one is its outcome.
_WORST_FIRST = (
    Outcome.NOT_RUN,
    Outcome.CRASHED,
    Outcome.TIMEOUT,
    Outcome.ERROR,
    Outcome.FAILED,
    Outcome.XPASSED,
    Outcome.XFAILED,
    Outcome.SKIPPED,
    Outcome.PASSED,
)
_RANK = {outcome: rank for rank, outcome in enumerate(_WORST_FIRST)}


def parse(text: object) -> Outcome | None:
    """The outcome named ``text``, or None for a word that is none."""
    try:
        return Outcome(str(text))
    except ValueError:
        return None


def worst(outcomes: Iterable[object]) -> Outcome:
    """The worst of ``outcomes``; an unknown word counts as an error."""
    known = [parse(o) or Outcome.ERROR for o in outcomes]
    return min(known, key=_RANK.__getitem__)


def is_failing(text: object) -> bool:
    return parse(text) in FAILING


class RunStatus(str, enum.Enum):
    """How a run, a part of it, or a combine ended."""

    NOT_STARTED = "not started"
    RUNNING = "running"
    PASSED = "passed"
    PASSED_WITH_WARNINGS = "passed with warnings"
    FAILED = "failed"
    ERROR = "error"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of_parts(cls, statuses: Iterable[object]) -> RunStatus:
        """One status for a run: the worst of its parts'; any part that did not pass fails
        it."""
        found = {str(s) for s in statuses}
        if found <= {cls.PASSED.value}:
            return cls.PASSED
        for status in (cls.INTERRUPTED, cls.ERROR, cls.CRASHED, cls.TIMEOUT):
            if status.value in found:
                return status
        return cls.FAILED

    @property
    def passed(self) -> bool:
        return self in (RunStatus.PASSED, RunStatus.PASSED_WITH_WARNINGS)
