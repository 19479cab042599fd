"""A rerun's time limit: what its tests may take, and what its process may take to start."""

from __future__ import annotations

from pathlib import Path

from noxlib.reruns import START_FLOOR_SECONDS, START_SECONDS, Rerunner, start_allowance


def test_the_start_allowance_follows_the_runs_own_collections() -> None:
    assert start_allowance([]) == START_SECONDS  # nothing measured: the generous default
    assert start_allowance([0.5, 2.0]) == START_FLOOR_SECONDS + 6.0  # three times the longest
    assert start_allowance([40.0]) == START_SECONDS  # never more than the default


def test_a_reruns_limit_is_its_start_and_each_tests_limit(tmp_path: Path) -> None:
    runner = Rerunner(lambda ids: (), {}, tmp_path, per_test=8.0, start=17.0)
    assert runner.limit(1) == 25.0
    assert runner.limit(3) == 41.0
