"""The flakiness rate, the rollback line and flaky.md, from ci_timings.jsonl history."""

from __future__ import annotations

import json
from pathlib import Path

from noxlib.history import (
    flakiness,
    flaky_tests,
    inputs_key,
    order_dependent_line,
    passes_at,
    read_history,
    render_flaky_md,
    reproduce_in_parallel,
    reproduce_serially,
    rollback_line,
    watched,
)


def run(index: int, *, flaky: str | None = None, mode: str = "parallel") -> dict[str, object]:
    failures = []
    if flaky:
        failures.append(
            {"nodeid": flaky, "status": "failed", "triage": "parallel-only", "category": "C"}
        )
        failures.append(
            {"nodeid": "t.py::real", "status": "failed", "triage": "fails-always", "category": "R"}
        )
    return {
        "started_at": f"2026-11-{index:02d}T10:00:00+0000",
        "session": "ci",
        "groups": ["unit"],
        "mode": mode,
        "engine": "shards",
        "workers": 2,
        "shard": None,
        "failures": failures,
    }


def history_of(flaky_at: set[int], total: int = 20) -> list[dict[str, object]]:
    return [run(i, flaky="t.py::pair" if i in flaky_at else None) for i in range(1, total + 1)]


def test_two_parallel_only_runs_of_twenty_is_ten_percent_above_five() -> None:
    rate = flakiness(history_of({4, 11}), threshold=5.0, session="ci")
    assert (rate.runs, rate.parallel_only, rate.percent) == (20, 2, 10.0)
    assert rate.above
    line = rollback_line(rate, "reports")
    assert line is not None
    assert "parallel-only failures in 2 of the last 20 parallel runs of ci (10 %)" in line
    assert "PYTEST_WORKERS=1" in line
    assert "reports/flaky.md" in line


def test_one_in_twenty_is_not_above_five_percent() -> None:
    rate = flakiness(history_of({4}), threshold=5.0, session="ci")
    assert rate.percent == 5.0
    assert not rate.above
    assert rollback_line(rate, "reports") is None


def test_below_the_minimum_sample_the_signal_says_how_many_runs_it_has() -> None:
    rate = flakiness(history_of({2}, total=3), threshold=5.0, session="ci")
    assert rate.percent > 30  # one bad run of three ...
    assert not rate.above  # ... is no signal
    assert rollback_line(rate, "reports") is None
    assert rate.describe() == (
        "the roll-back signal reads the last 20 parallel runs of ci, and needs 10: 3 runs so far"
    )
    enough = flakiness(history_of({2}, total=10), threshold=5.0, session="ci")
    assert enough.above


def test_the_signal_reads_the_sessions_own_parallel_runs_only() -> None:
    old_flaky = history_of({1, 2, 3}, total=30)  # runs 1-3 fell out of the window
    assert flakiness(old_flaky, 5.0, "ci").parallel_only == 0
    serial_runs = [run(i, flaky="t.py::x", mode="serial") for i in range(15)]
    rate = flakiness([*history_of(set(), total=3), *serial_runs], 5.0, "ci")
    assert (rate.runs, rate.parallel_only) == (3, 0)  # serial runs are no evidence
    other = [{**r, "session": "tests-parallel"} for r in history_of(set(range(1, 21)))]
    assert flakiness([*history_of(set()), *other], 5.0, "ci").parallel_only == 0
    assert flakiness(other, 5.0, "tests-parallel").parallel_only == 20
    assert not flakiness([], 5.0, "ci").above


def test_only_parallel_only_failures_argue_for_rolling_back() -> None:
    def with_verdict(verdict: str) -> list[dict[str, object]]:
        failure = {"nodeid": "t.py::v", "status": "failed", "triage": verdict}
        return [{**run(i), "failures": [failure]} for i in range(1, 21)]

    for verdict in ("fails-always", "flaky", "order-dependent"):
        rate = flakiness(with_verdict(verdict), 0.0, "ci")
        assert rate.parallel_only == 0
        assert not rate.above
    ordered = flakiness(with_verdict("order-dependent"), 5.0, "ci")
    assert ordered.order_dependent == 20
    line = order_dependent_line(ordered, "reports")
    assert line is not None
    assert "PYTEST_WORKERS=1 does not fix those" in line
    assert "polluters" in line
    assert flakiness(with_verdict("flaky"), 5.0, "ci").flaky == 20


def test_a_failure_that_passed_at_the_same_code_and_inputs_is_flaky() -> None:
    key = inputs_key("commit-a", "tests", ["unit"], [])
    assert key
    assert key != inputs_key("commit-b", "tests", ["unit"], [])
    assert key != inputs_key("commit-a", "tests", ["unit"], ["-k", "x"])
    assert inputs_key("", "tests", [], []) == ""  # outside git: no evidence
    failed = {
        **run(1),
        "inputs": key,
        "passed_watched": [],
        "failures": [{"nodeid": "t.py::coin", "status": "failed", "triage": "fails-always"}],
    }
    passed = {**run(2), "inputs": key, "passed_watched": ["t.py::coin"], "failures": []}
    elsewhere = {**passed, "inputs": inputs_key("commit-b", "tests", ["unit"], [])}
    assert watched([failed]) == {"t.py::coin"}
    assert passes_at([failed, passed], key, ["t.py::coin"]) == {
        "t.py::coin": "passed at the same code and inputs in the run of 2026-11-02T10:00:00+0000"
    }
    assert passes_at([failed, elsewhere], key, ["t.py::coin"]) == {}
    # A later pass at the same commit corrects the earlier fails-always in flaky.md.
    assert flaky_tests([failed]) == []
    (coin,) = flaky_tests([failed, passed])
    assert (coin.nodeid, coin.triage, coin.times) == ("t.py::coin", "flaky", 1)
    assert flaky_tests([failed, elsewhere]) == []


def test_a_fails_always_verdict_is_contradicted_by_a_pass_alone_at_the_same_code() -> None:
    mixed = {"nodeid": "t.py::coin", "triage": "flaky", "alone": ["failed", "passed"]}
    earlier = {**run(1), "code": "c1", "failures": [mixed]}
    assert passes_at([earlier], "", ["t.py::coin"], "c1") == {
        "t.py::coin": "passed alone at the same code in the run of 2026-11-01T10:00:00+0000"
    }
    assert passes_at([earlier], "", ["t.py::coin"], "c2") == {}
    always = {"nodeid": "t.py::coin", "triage": "fails-always", "alone": ["failed", "failed"]}
    later = {**run(2), "code": "c1", "failures": [always]}
    assert [t.triage for t in flaky_tests([earlier, later])] == ["flaky"]
    assert flaky_tests([{**later, "code": "c2"}]) == []


def test_read_history_reads_the_tail_and_skips_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "ci_timings.jsonl"
    assert read_history(path) == []
    lines = [json.dumps(run(i)) for i in range(1, 31)]
    path.write_text("\n".join([*lines[:10], '{"torn": ', "[1, 2]", *lines[10:]]) + "\n")
    assert len(read_history(path)) == 30
    tail = read_history(path, tail_bytes=len(lines[-1]) * 3)
    assert 1 < len(tail) <= 3  # the line the seek cut is dropped, not misread
    assert tail[-1]["started_at"] == run(30)["started_at"]


def test_flaky_tests_first_last_seen_and_how_often() -> None:
    history = history_of({4, 11, 15})
    (pair,) = flaky_tests(history)
    assert pair.nodeid == "t.py::pair"
    assert pair.first_seen == "2026-11-04T10:00:00+0000"
    assert pair.last_seen == "2026-11-15T10:00:00+0000"
    assert pair.times == 3
    assert pair.runs_since_first == 17  # runs 4 to 20
    assert pair.triage == "parallel-only"


def test_the_reproducing_commands() -> None:
    assert reproduce_serially("tests/t.py::test_x[a b]") == (
        "PYTEST_WORKERS=1 nox -s tests -- 'tests/t.py::test_x[a b]'"
    )
    assert reproduce_serially("t.py::holder", "t.py::checker") == (
        "PYTEST_WORKERS=1 nox -s tests -- t.py::holder t.py::checker"
    )
    last = {**run(1), "shard": "2/3", "engine": "xdist", "workers": 4}
    assert reproduce_in_parallel("tests/t.py::x", last) == (
        "PYTEST_WORKERS=4 NOXLIB_ENGINE=xdist NOXLIB_SHARD=2/3 nox -s ci -- unit"
    )
    no_groups = {**run(1), "groups": [], "session": "tests-parallel"}
    assert reproduce_in_parallel("tests/t.py::x", no_groups).endswith(
        "nox -s tests-parallel -- tests/t.py"
    )


def test_flaky_md_lists_each_test_with_its_commands() -> None:
    text = render_flaky_md(history_of({4, 11}))
    assert "| `t.py::pair` | parallel-only | - | C | 2026-11-04T10:00:00+0000 |" in text
    assert "2 of 17 runs since first seen" in text
    assert "PYTEST_WORKERS=1 nox -s tests -- t.py::pair" in text
    assert "PYTEST_WORKERS=2 NOXLIB_ENGINE=shards nox -s ci -- unit" in text
    assert "t.py::real" not in text  # fails-always is no flakiness
    assert "quarantine" not in text  # two runs: not yet
    assert "No such test in these runs." in render_flaky_md(history_of(set()))


def test_flaky_md_names_the_polluter_and_suggests_quarantine_for_a_repeat_offender() -> None:
    victim = {
        "nodeid": "t.py::checker",
        "status": "failed",
        "triage": "order-dependent",
        "polluter": ["t.py::holder"],
    }
    serial = [{**run(i, mode="serial"), "failures": [victim]} for i in range(1, 4)]
    text = render_flaky_md(serial)
    assert "| `t.py::checker` | order-dependent | `t.py::holder` |" in text
    assert "PYTEST_WORKERS=1 nox -s tests -- t.py::holder t.py::checker" in text
    assert "in parallel" not in text  # serial runs: no parallel command
    assert '{ id = "t.py::checker", reason = "order-dependent in 3 of 3 runs since' in text
    assert 'expires = "YYYY-MM-DD" }' in text
