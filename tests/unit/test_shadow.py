"""Shadow --affected judged by a full run's outcomes, without nox or pytest."""

from __future__ import annotations

from noxlib.affected import Selection, run_everything
from noxlib.shadow import judge

TESTS = ("t.py::a", "t.py::b", "t.py::c", "u.py::d")
RESULTS = [
    ("t.py::a", "passed", 1.0),
    ("t.py::b", "failed", 2.0),
    ("t.py::c", "not-run", 4.0),
    ("u.py::d", "error", 8.0),
    ("new.py::e", "failed", 16.0),  # not in the map: it would have run
]


def test_a_failing_test_the_selection_leaves_out_is_a_miss() -> None:
    selection = Selection(frozenset({"t.py::b", "t.py::c"}), None, commit="abcdef12", tests=TESTS)
    verdict = judge(selection, RESULTS)
    assert verdict.missed == ("t.py::b",)  # c did not fail, d and e were selected
    assert (verdict.selected, verdict.total, verdict.saved_seconds) == (3, 5, 6.0)
    assert verdict.record()["share"] == 0.6
    line = verdict.log_line()
    assert line.startswith("shadow --affected (the map of abcdef1): MISSED 1 failing test that")
    assert "it would have run 3 of 5 tests (60%)" in line
    assert verdict.lines()[-4:] == ["Missed:", "", "- `t.py::b`", ""]


def test_a_selection_of_everything_misses_nothing_and_says_why() -> None:
    verdict = judge(run_everything("conftest.py changed (conftest.py)", "abcdef12"), RESULTS)
    assert verdict.missed == ()
    assert (verdict.selected, verdict.saved_seconds) == (5, 0.0)
    assert verdict.log_line().endswith("every test, because conftest.py changed (conftest.py)")


def test_a_right_selection_says_what_it_saves() -> None:
    selection = Selection(frozenset({"t.py::a", "t.py::c"}), None, commit="abcdef12", tests=TESTS)
    line = judge(selection, RESULTS).log_line()
    assert line.endswith(
        "it would have run 3 of 5 tests (60%), 5.0 s fewer; no failing test left out"
    )
