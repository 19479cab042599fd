"""Shadow ``--affected`` in ``ci``: what the selection would have left out of a full run.

``ci`` always runs every test. With a map present, it also asks what ``nox -s tests --
--affected`` would have selected against that map, before the run writes a new one, and, once
the full run's outcomes are known, judges the selection by them: a failing test it would have
left out is a miss, said loudly in the log, ``ci_timings.md`` and the jsonl history. That is the
measured miss rate of the selection, on the project's own changes. Pure: the selection comes
from ``affected``, the outcomes from the run's results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from noxlib.affected import Selection
from noxlib.gitdiff import short
from noxlib.outcomes import FAILING
from noxlib.words import plural, some

# Failing ids listed in the log and the report; the jsonl history keeps them all.
SHOWN = 20


@dataclass(frozen=True)
class ShadowVerdict:
    """The selection of ``commit``'s map judged by a full run: ``selected`` of ``total``
    tests, the seconds the left-out ones took, and the failing tests it would have missed."""

    commit: str | None
    everything: str | None  # why it would have run every test, or None
    selected: int
    total: int
    saved_seconds: float
    missed: tuple[str, ...]

    @property
    def share(self) -> float:
        return self.selected / self.total if self.total else 1.0

    def record(self) -> dict[str, object]:
        return {
            "map_commit": self.commit,
            "everything": self.everything,
            "selected": self.selected,
            "total": self.total,
            "share": round(self.share, 4),
            "saved_seconds": round(self.saved_seconds, 3),
            "missed": list(self.missed),
        }

    def log_line(self) -> str:
        where = f"the map of {short(self.commit)}" if self.commit else "no map"
        if self.everything is not None:
            return (
                f"shadow --affected ({where}): it would have run every test, because "
                f"{self.everything}"
            )
        ran = f"it would have run {self.selected:,} of {self.total:,} tests ({self.share:.0%})"
        if self.missed:
            shown = some(self.missed, SHOWN)
            return (
                f"shadow --affected ({where}): MISSED {plural(len(self.missed), 'failing test')}"
                f" that it would have left out: {shown}. {ran}. The map cannot see how "
                "this change reaches them: please report it, and do not trust --affected for "
                "such a change"
            )
        return (
            f"shadow --affected ({where}): {ran}, {self.saved_seconds:.1f} s fewer; "
            "no failing test left out"
        )

    def lines(self) -> list[str]:
        """The report's section."""
        section = ["## Shadow --affected", "", self.log_line(), ""]
        if self.missed:
            section += ["Missed:", "", *[f"- `{nodeid}`" for nodeid in self.missed[:SHOWN]], ""]
        return section


def judge(selection: Selection, results: Iterable[tuple[str, str, float]]) -> ShadowVerdict:
    """Judge ``selection`` by a full run's ``results`` ((node id, outcome, seconds) each). A
    test the map does not know would have run; so would every test when it says why."""
    skipped = set() if selection.everything is not None else selection.skip
    total = selected = 0
    saved = 0.0
    missed: list[str] = []
    for nodeid, outcome, seconds in results:
        total += 1
        if nodeid not in skipped:
            selected += 1
            continue
        saved += seconds
        if outcome in FAILING:
            missed.append(nodeid)
    return ShadowVerdict(
        selection.commit, selection.everything, selected, total, saved, tuple(sorted(missed))
    )
