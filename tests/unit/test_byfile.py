"""Shards that collect only their own files: when the plan splits by file, that every file goes
to exactly one shard (known or new, at one level or two), and that shards agree."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from noxlib.byfile import BALANCE_SLACK, ShardFiles, split_by_file
from noxlib.durations import file_of
from noxlib.parts import ShardSpec


def suite(files: int, tests: int, seconds: float = 0.01) -> dict[str, float]:
    return {f"tests/test_{f}.py::test_{t}": seconds for f in range(files) for t in range(tests)}


def owners(shares: list[ShardFiles], path: str) -> list[int]:
    return [k for k, share in enumerate(shares, 1) if share.collects(path)]


def test_many_even_files_split_by_file_and_each_known_file_has_one_shard() -> None:
    durations = suite(10, 300)
    split = split_by_file(durations, [], 2)
    assert split is not None
    shares, local_by_test = split
    assert not local_by_test
    for path in {file_of(t) for t in durations}:
        assert len(owners(shares, path)) == 1, path
    assert sum(len(s.own) for s in shares) == 10
    assert all(len(s.own) == 5 for s in shares)  # even files: five each


def test_a_file_the_durations_do_not_know_goes_to_exactly_one_shard() -> None:
    shares, _ = split_by_file(suite(6, 10), [], 3) or ([], False)
    assert shares
    new = [f"tests/new/test_{i}.py" for i in range(200)]
    assert all(len(owners(shares, path)) == 1 for path in new)
    # ... and they spread: a hash, not "the first shard takes everything new".
    assert {owners(shares, path)[0] for path in new} == {1, 2, 3}


def test_conftest_and_init_are_collected_by_every_shard() -> None:
    shares, _ = split_by_file(suite(4, 10), [], 2) or ([], False)
    for path in ("tests/conftest.py", "tests/sub/__init__.py", "conftest.py"):
        assert owners(shares, path) == [1, 2]


def test_one_big_file_among_small_ones_keeps_splitting_by_test() -> None:
    durations = {**suite(3, 10), **{f"tests/test_big.py::test_{i}": 1.0 for i in range(50)}}
    assert split_by_file(durations, [], 2) is None


def test_kept_together_by_module_the_plan_is_per_file_however_it_balances() -> None:
    durations = {**suite(3, 10), **{f"tests/test_big.py::test_{i}": 1.0 for i in range(50)}}
    split = split_by_file(durations, [], 2, keep_together="module")
    assert split is not None
    shares, local_by_test = split
    assert not local_by_test
    assert {"tests/test_big.py"} in [set(s.own) for s in shares]


def test_fewer_files_than_shards_or_no_durations_keeps_splitting_by_test() -> None:
    assert split_by_file(suite(1, 100), [], 2) is None
    assert split_by_file({}, [], 2) is None
    assert split_by_file(suite(5, 10), [], 1) is None  # one process collects everything


def test_the_per_file_plan_is_used_only_within_the_slack() -> None:
    # Two files of 1.0 s and one of 1.2 s over two shards: by file 2.0 against 1.6 by test.
    durations = {
        **{f"tests/test_a.py::t{i}": 0.1 for i in range(10)},
        **{f"tests/test_b.py::t{i}": 0.1 for i in range(10)},
        **{f"tests/test_c.py::t{i}": 0.1 for i in range(12)},
    }
    assert BALANCE_SLACK * 1.6 < 2.0
    assert split_by_file(durations, [], 2) is None


@pytest.mark.parametrize("seed", range(5))
def test_two_levels_split_by_file_cover_every_file_once(seed: int) -> None:
    rng = random.Random(seed)
    durations = {
        f"tests/test_{f}.py::test_{t}": rng.uniform(0.001, 0.01)
        for f in range(40)
        for t in range(rng.randint(20, 40))
    }
    files = {file_of(t) for t in durations} | {"tests/test_new_a.py", "tests/test_new_b.py"}
    every: list[ShardFiles] = []
    for machine in (1, 2, 3):
        split = split_by_file(durations, [ShardSpec(machine, 3)], 2)
        assert split is not None
        shares, local_by_test = split
        # Split by test locally, both shards collect the machine's files: count them once.
        every += shares[:1] if local_by_test else shares
    for path in files:
        assert len(owners(every, path)) == 1, path


def test_machines_agree_on_the_outer_plan_whatever_their_local_count() -> None:
    durations = suite(30, 20)
    own = {}
    for local in (1, 2, 4):
        split = split_by_file(durations, [ShardSpec(2, 3)], local)
        assert split is not None
        shares, _ = split
        own[local] = frozenset().union(*(s.own for s in shares))
        assert {s.plans[0] for s in shares} == {shares[0].plans[0]}
    assert own[1] == own[2] == own[4]


def test_outer_by_file_and_local_by_test() -> None:
    # Three machines by file; on machine 1 one file is most of the share: the two local
    # shards collect the machine's files and split them by test.
    durations = {**suite(9, 10), "tests/test_0.py::test_slow": 3.0}
    split = split_by_file(durations, [ShardSpec(1, 3)], 2)
    assert split is not None
    shares, local_by_test = split
    assert local_by_test
    assert shares[0] == shares[1]
    assert "tests/test_0.py" in shares[0].own


def test_an_outer_level_that_cannot_split_by_file_splits_nothing_by_file() -> None:
    # By file one machine gets both 10 s tests (20 s); by test each gets one (10.1 s).
    slow = {"tests/test_0.py::test_slow1": 10.0, "tests/test_0.py::test_slow2": 10.0}
    durations = {**suite(3, 10), **slow}
    assert split_by_file(durations, [ShardSpec(2, 2)], 2) is None


def test_a_share_round_trips_through_its_file(tmp_path: Path) -> None:
    shares, _ = split_by_file(suite(4, 5), [ShardSpec(1, 2)], 2) or ([], False)
    assert shares
    shares[1].write(tmp_path / "share.json")
    assert ShardFiles.read(tmp_path / "share.json") == shares[1]
