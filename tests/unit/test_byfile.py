"""Shards that collect only their own files: when the plan splits by file, that every file goes
to exactly one shard (known or new, at one level or two), and that shards agree."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from noxlib.byfile import BALANCE_SLACK, ShardFiles, function_of, split_by_file
from noxlib.durations import file_of
from noxlib.parts import ShardSpec


def suite(files: int, tests: int, seconds: float = 0.01) -> dict[str, float]:
    return {f"tests/test_{f}.py::test_{t}": seconds for f in range(files) for t in range(tests)}


def owners(shares: list[ShardFiles], path: str) -> list[int]:
    return [k for k, share in enumerate(shares, 1) if share.collects(path)]


def runs(share: ShardFiles, nodeid: str) -> bool:
    """Whether the shard's pytest collects the test's file, builds its function's items and
    keeps the test: all three, as the plugin's hooks ask them."""
    if not share.collects(file_of(nodeid)):
        return False
    if share.splits(nodeid) and not share.builds(function_of(nodeid)):
        return False
    return share.owns(nodeid)


def runners(shares: list[ShardFiles], nodeid: str) -> list[int]:
    return [k for k, share in enumerate(shares, 1) if runs(share, nodeid)]


def loads(durations: dict[str, float], count: int) -> list[float]:
    """The recorded seconds of what each local shard runs."""
    split = split_by_file(durations, [], count)
    assert split is not None
    return [sum(v for t, v in durations.items() if runs(s, t)) for s in split.files]


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


def test_one_big_file_among_small_ones_is_split_by_function() -> None:
    durations = {**suite(3, 10), **{f"tests/test_big.py::test_{i}": 1.0 for i in range(50)}}
    split = split_by_file(durations, [], 2)
    assert split is not None
    shares, local_by_test = split
    assert not local_by_test
    assert all(s.refined == {"tests/test_big.py"} for s in shares)
    assert owners(shares, "tests/test_big.py") == [1, 2]  # both collect it ...
    for i in range(50):  # ... and build the items of their own functions only
        function = f"tests/test_big.py::test_{i}"
        assert [k for k, s in enumerate(shares, 1) if s.builds(function)] == runners(
            shares, function
        )
        assert len(runners(shares, function)) == 1
    assert max(loads(durations, 2)) <= BALANCE_SLACK * 25.15  # 50.3 s over two shards


def test_one_dominant_parametrized_function_is_split_by_test() -> None:
    heavy = {f"tests/test_big.py::test_cmp[{i}]": 0.1 for i in range(100)}
    durations = {**suite(3, 10), **heavy, "tests/test_big.py::test_other": 0.1}
    split = split_by_file(durations, [], 2)
    assert split is not None
    shares, _ = split
    assert shares[0].refined == {"tests/test_big.py", "tests/test_big.py::test_cmp"}
    # Every shard builds the split function, and each of its tests runs in one of them.
    assert all(s.builds("tests/test_big.py::test_cmp") for s in shares)
    assert {len(runners(shares, t)) for t in heavy} == {1}
    assert {runners(shares, t)[0] for t in heavy} == {1, 2}


def test_with_classes_kept_together_no_file_is_split_by_function() -> None:
    durations = {**suite(3, 10), **{f"tests/test_big.py::T::test_{i}": 1.0 for i in range(50)}}
    assert split_by_file(durations, [], 2, keep_together="class") is None


def test_kept_together_by_module_the_plan_is_per_file_however_it_balances() -> None:
    durations = {**suite(3, 10), **{f"tests/test_big.py::test_{i}": 1.0 for i in range(50)}}
    split = split_by_file(durations, [], 2, keep_together="module")
    assert split is not None
    shares, local_by_test = split
    assert not local_by_test
    assert {"tests/test_big.py"} in [set(s.own) for s in shares]


def test_fewer_files_than_shards_or_no_durations_keeps_splitting_by_test() -> None:
    assert split_by_file(suite(1, 100), [], 2, keep_together="module") is None
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
    split = split_by_file(durations, [], 2)
    assert split is not None
    # The costliest file is split by function; the other two stay whole.
    assert {s.refined for s in split.files} == {frozenset({"tests/test_c.py"})}
    assert sorted(loads(durations, 2)) == pytest.approx([1.6, 1.6])


def random_suite(rng: random.Random) -> dict[str, float]:
    """Files of plain functions, parametrized functions and class methods; some files and
    some functions far heavier than the rest."""
    durations = {}
    for f in range(rng.randint(3, 30)):
        weight = rng.choice([1.0, 1.0, 1.0, 20.0])
        for g in range(rng.randint(1, 6)):
            function = rng.choice([f"test_{g}", f"TestC{g % 2}::test_{g}"])
            heavy = weight * rng.choice([1.0, 1.0, 30.0])
            params = rng.choice([0, 0, 1, 5, 40])
            for p in range(params) if params else [None]:
                suffix = "" if p is None else f"[{p}-x::y]"  # "::" inside parameters too
                durations[f"tests/test_{f}.py::{function}{suffix}"] = 0.001 * heavy
    return durations


def new_tests(durations: dict[str, float]) -> list[str]:
    """Tests the durations do not know: a new file, a new function in each file, a new
    parameter of each function."""
    found = ["tests/test_new.py::test_x", "tests/sub/test_new.py::TestN::test_y[1]"]
    found += [f"{path}::test_brand_new" for path in {file_of(t) for t in durations}]
    found += [f"{function}[new]" for function in {function_of(t) for t in durations}]
    return found


@pytest.mark.parametrize("seed", range(40))
def test_every_test_known_or_new_runs_in_exactly_one_shard_of_the_matrix(seed: int) -> None:
    rng = random.Random(seed)
    durations = random_suite(rng)
    machines, local = rng.choice([(1, 2), (1, 3), (2, 2), (3, 2)])
    every: list[ShardFiles] = []
    for machine in range(1, machines + 1):
        levels = [ShardSpec(machine, machines)] if machines > 1 else []
        split = split_by_file(durations, levels, local)
        if split is None:
            return  # nothing splits by file: every shard collects everything (test_parts)
        # Split by test locally, the shards collect alike and split later: count them once.
        every += split.files[:1] if split.local_by_test else split.files
    for nodeid in [*durations, *new_tests(durations)]:
        assert len(runners(every, nodeid)) == 1, nodeid


def test_the_random_suites_do_split_files_by_function_and_by_test() -> None:
    # The property above proves something only if its suites reach every kind of unit.
    refined: set[str] = set()
    for seed in range(40):
        split = split_by_file(random_suite(random.Random(seed)), [], 2)
        refined |= split.files[0].refined if split else set()
    assert any("::" in unit for unit in refined)  # a function split by test
    assert any("::" not in unit for unit in refined)  # a file split by function


def test_machines_agree_on_the_outer_plan_whatever_their_local_count() -> None:
    durations = suite(30, 20)
    ran = {}
    for local in (1, 2, 4):
        split = split_by_file(durations, [ShardSpec(2, 3)], local)
        assert split is not None
        shares, _ = split
        ran[local] = {t for t in durations if runners(shares, t)}
        assert {s.plans[0] for s in shares} == {shares[0].plans[0]}
    assert ran[1] == ran[2] == ran[4]


def test_outer_by_file_and_local_by_test() -> None:
    # Three machines by file; on machine 1 one class is most of the share, and classes are
    # kept together: the two local shards collect the machine's files and split them by test.
    durations = {**suite(9, 10), "tests/test_0.py::TestSlow::test_slow": 3.0}
    split = split_by_file(durations, [ShardSpec(1, 3)], 2, keep_together="class")
    assert split is not None
    shares, local_by_test = split
    assert local_by_test
    assert shares[0] == shares[1]
    assert "tests/test_0.py" in shares[0].own


def test_outer_by_file_and_local_by_function() -> None:
    durations = {**suite(9, 10), "tests/test_0.py::test_slow": 3.0}
    split = split_by_file(durations, [ShardSpec(1, 3)], 2)
    assert split is not None
    assert not split.local_by_test
    assert split.files[0].refined == {"tests/test_0.py"}
    assert runners(split.files, "tests/test_0.py::test_slow") != runners(
        split.files, "tests/test_0.py::test_0"
    )


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


def test_a_share_split_by_function_round_trips_through_its_file(tmp_path: Path) -> None:
    heavy = {f"tests/test_big.py::test_cmp[{i}]": 0.1 for i in range(100)}
    split = split_by_file({**suite(3, 10), **heavy}, [], 2)
    assert split is not None
    assert split.files[0].refined
    split.files[0].write(tmp_path / "share.json")
    assert ShardFiles.read(tmp_path / "share.json") == split.files[0]
