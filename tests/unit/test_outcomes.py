"""Outcomes and run statuses: which of two outcomes is worse, and one status for a run of
parts."""

from __future__ import annotations

import itertools

import pytest

from noxlib.outcomes import FAILING, Outcome, RunStatus, is_failing, parse, worst

WORST_FIRST = [
    Outcome.NOT_RUN,
    Outcome.CRASHED,
    Outcome.TIMEOUT,
    Outcome.ERROR,
    Outcome.FAILED,
    Outcome.XPASSED,
    Outcome.XFAILED,
    Outcome.SKIPPED,
    Outcome.PASSED,
]


def test_worst_follows_the_order_worst_first() -> None:
    assert sorted(WORST_FIRST) == sorted(Outcome)  # every outcome has its place
    for i, j in itertools.combinations(range(len(WORST_FIRST)), 2):
        worse, better = WORST_FIRST[i], WORST_FIRST[j]
        assert worst([better, worse]) is worse, (better, worse)
        assert worst([worse.value, better.value]) is worse, (worse, better)


def test_worst_of_words_and_unknown_words() -> None:
    assert worst(["passed"]) is Outcome.PASSED
    assert worst(["passed", "passed", "skipped"]) is Outcome.SKIPPED
    assert worst(["passed", "weird"]) is Outcome.ERROR  # an unknown word is an error
    assert worst(["weird", "crashed"]) is Outcome.CRASHED
    assert worst([None, "passed"]) is Outcome.ERROR
    with pytest.raises(ValueError, match="empty"):
        worst([])


def test_outcomes_are_their_words() -> None:
    assert str(Outcome.NOT_RUN) == "not-run"
    assert f"{Outcome.XPASSED}" == "xpassed"
    assert parse("timeout") is Outcome.TIMEOUT
    assert parse("Passed") is None
    assert parse(None) is None
    assert set(FAILING) == {Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASHED}
    assert is_failing("crashed")
    assert not is_failing("not-run")  # the books fail the run, not the test's outcome
    assert not is_failing("weird")


def test_a_run_passes_only_when_every_part_passed() -> None:
    assert RunStatus.of_parts(["passed", "passed"]) is RunStatus.PASSED
    assert RunStatus.of_parts([RunStatus.PASSED]) is RunStatus.PASSED
    assert RunStatus.of_parts(["passed", "failed"]) is RunStatus.FAILED
    assert RunStatus.of_parts(["not started"]) is RunStatus.FAILED
    assert RunStatus.of_parts(["running", "passed"]) is RunStatus.FAILED
    assert RunStatus.of_parts(["passed with warnings"]) is RunStatus.FAILED


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["failed", "timeout", "crashed", "error", "interrupted"], RunStatus.INTERRUPTED),
        (["failed", "timeout", "crashed", "error", "passed"], RunStatus.ERROR),
        (["failed", "timeout", "crashed", "passed"], RunStatus.CRASHED),
        (["timeout", "failed", "passed"], RunStatus.TIMEOUT),
        (["failed", "passed"], RunStatus.FAILED),
        (["passed", "weird"], RunStatus.FAILED),
    ],
)
def test_a_run_takes_the_worst_status_of_its_parts(
    statuses: list[str], expected: RunStatus
) -> None:
    assert RunStatus.of_parts(statuses) is expected
    assert RunStatus.of_parts(reversed(statuses)) is expected


def test_which_statuses_passed() -> None:
    assert [s for s in RunStatus if s.passed] == [
        RunStatus.PASSED,
        RunStatus.PASSED_WITH_WARNINGS,
    ]
    assert str(RunStatus.PASSED_WITH_WARNINGS) == "passed with warnings"
