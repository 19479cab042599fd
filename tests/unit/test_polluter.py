"""The polluter search over a fake rerun: which tests before the victim make it fail."""

from __future__ import annotations

from collections.abc import Sequence

from noxlib.polluter import Budget, search

BEFORE = [f"t.py::test_{i}" for i in range(12)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def victim_after(*polluters: str, clock: Clock | None = None) -> list[Sequence[str]]:
    """A fake rerun: the victim fails when every one of ``polluters`` ran before it."""
    calls: list[Sequence[str]] = []

    def fails(before: Sequence[str]) -> bool:
        calls.append(before)
        if clock is not None:
            clock.now += 10.0
        return all(p in before for p in polluters)

    fails.calls = calls  # type: ignore[attr-defined]
    return fails  # type: ignore[return-value]


def test_one_polluter_is_found_by_halving() -> None:
    fails = victim_after("t.py::test_9")
    found = search(BEFORE, fails, Budget(60.0))  # type: ignore[arg-type]
    assert found.found
    assert found.culprits == ("t.py::test_9",)
    # 12 -> 6 (both halves tried) -> 3 (both) -> 1 (the first half fails: the other is not run)
    assert found.reruns == len(fails.calls) == 5  # type: ignore[attr-defined]
    assert found.describe().startswith("after t.py::test_9 (found in ")
    # Each rerun keeps the order the tests ran in.
    for before in fails.calls:  # type: ignore[attr-defined]
        assert list(before) == sorted(before, key=BEFORE.index)


def test_two_polluters_together_leave_the_smallest_set_found() -> None:
    found = search(BEFORE, victim_after("t.py::test_1", "t.py::test_10"), Budget(60.0))  # type: ignore[arg-type]
    assert not found.found
    assert {"t.py::test_1", "t.py::test_10"} <= set(found.culprits)
    assert "both halves" in found.note
    assert found.describe().startswith(f"after a set of {len(found.culprits)} tests")


def test_the_budget_stops_the_search_and_says_so() -> None:
    clock = Clock()
    found = search(BEFORE, victim_after("t.py::test_9", clock=clock), Budget(15.0, clock))  # type: ignore[arg-type]
    assert not found.found
    assert found.note == "triage-budget spent"
    assert found.seconds >= 15.0


def test_a_rerun_without_evidence_stops_the_search() -> None:
    found = search(BEFORE, lambda before: None, Budget(60.0))
    assert found.culprits == tuple(BEFORE)
    assert "no evidence" in found.note
