"""The flakiness rate, the rollback line and flaky.md, from ci_timings.jsonl history."""

from __future__ import annotations

import json
from pathlib import Path

from noxlib.history import (
    Flakiness,
    flakiness,
    flaky_tests,
    read_history,
    render_flaky_md,
    reproduce_in_parallel,
    reproduce_serially,
    rollback_line,
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


def test_two_flaky_runs_of_twenty_is_ten_percent_above_five() -> None:
    rate = flakiness(history_of({4, 11}), threshold=5.0)
    assert (rate.runs, rate.flaky, rate.percent) == (20, 2, 10.0)
    assert rate.above
    line = rollback_line(rate, "reports")
    assert line is not None
    assert "flakiness 10 %: 2 of the last 20 parallel runs" in line
    assert "PYTEST_WORKERS=1" in line
    assert "reports/flaky.md" in line


def test_one_in_twenty_is_not_above_five_percent() -> None:
    rate = flakiness(history_of({4}), threshold=5.0)
    assert rate.percent == 5.0
    assert not rate.above
    assert rollback_line(rate, "reports") is None


def test_only_the_last_twenty_parallel_runs_count() -> None:
    old_flaky = history_of({1, 2, 3}, total=30)  # runs 1-3 fell out of the window
    assert flakiness(old_flaky, 5.0).flaky == 0
    serial_runs = [run(i, flaky="t.py::x", mode="serial") for i in range(5)]
    rate = flakiness([*history_of(set(), total=3), *serial_runs], 5.0)
    assert (rate.runs, rate.flaky) == (3, 0)  # serial runs are no evidence about parallelism
    assert flakiness([], 5.0) == Flakiness(0, 0, 5.0)
    assert not Flakiness(0, 0, 5.0).above


def test_fails_always_alone_is_not_flakiness() -> None:
    real_only = [{**run(1), "failures": [{"nodeid": "a", "triage": "fails-always"}]}]
    assert flakiness(real_only, 0.0).flaky == 0


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
    assert (
        reproduce_serially("tests/t.py::test_x[a b]") == "nox -s tests -- 'tests/t.py::test_x[a b]'"
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
    assert "| `t.py::pair` | parallel-only | C | 2026-11-04T10:00:00+0000 |" in text
    assert "2 of 17 runs since first seen" in text
    assert "nox -s tests -- t.py::pair" in text
    assert "PYTEST_WORKERS=2 NOXLIB_ENGINE=shards nox -s ci -- unit" in text
    assert "t.py::real" not in text  # fails-always is no flakiness
    assert "No flaky or parallel-only test" in render_flaky_md(history_of(set()))
