"""The shard planner: balance, one plan everywhere, prices, no empty shards, keep-together,
shard specs and two-level shares."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from noxlib.durations import write_durations
from noxlib.errors import UsageError
from noxlib.idfile import write_ids
from noxlib.parts import (
    DURATIONS_ENV,
    SELECT_ENV,
    SHARDS_ENV,
    PartFiles,
    Shard,
    ShardSpec,
    choose,
    parse_shard,
    plan_digest,
    plan_shards,
    prices,
    select_share,
    unit_of,
)


def lpt_factor(count: int) -> float:
    return 4 / 3 - 1 / (3 * count)


def makespan(shards: list[Shard], cost: dict[str, float]) -> float:
    return max(sum(cost[t] for t in shard.tests) for shard in shards)


def assert_covers_once(shards: list[Shard], tests: list[str]) -> None:
    planned = [t for shard in shards for t in shard.tests]
    assert len(planned) == len(set(planned)), "a test is in two shards"
    assert sorted(planned) == sorted(tests)


def perfect_skewed(seed: int, count: int) -> tuple[dict[str, float], float]:
    """A skewed suite (a few long tests, many short ones) that fills ``count`` shards to exactly
    the same load, so that the optimum is known: total / count.

    The long tests live in a file that sorts last, so a planner that did not take the longest
    first would place them last, on top of full shards.
    """
    rng = random.Random(seed)
    durations: dict[str, float] = {}
    target = 100.0
    for shard in range(count):
        longs = [rng.uniform(20, 45) for _ in range(rng.randint(0, 2))]
        for index, seconds in enumerate(longs):
            durations[f"tests/test_zz_slow.py::test_s{shard}_{index}"] = seconds
        left = target - sum(longs)
        shorts = [rng.uniform(0.05, 1.5) for _ in range(int(left / 0.7))]
        scale = left / sum(shorts)
        for index, seconds in enumerate(shorts):
            name = f"tests/test_m{rng.randint(0, 5)}.py::test_f{shard}_{index}"
            durations[name] = seconds * scale
    return durations, target


def optimum(costs: list[float], count: int) -> float:
    """The least makespan of ``costs`` on ``count`` shards, by exhaustive search (small inputs)."""
    jobs = sorted(costs, reverse=True)
    best = [sum(jobs)]

    def place(index: int, loads: list[float]) -> None:
        if max(loads) >= best[0]:
            return
        if index == len(jobs):
            best[0] = max(loads)
            return
        tried: set[float] = set()
        for shard, load in enumerate(loads):
            if load in tried:
                continue  # a shard as loaded as one tried already gives the same makespans
            tried.add(load)
            loads[shard] += jobs[index]
            place(index + 1, loads)
            loads[shard] -= jobs[index]

    place(0, [0.0] * count)
    return best[0]


# --- balance --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 4, 7])
@pytest.mark.parametrize("seed", range(5))
def test_balance_within_the_lpt_bound_on_skewed_suites_of_known_optimum(
    seed: int, count: int
) -> None:
    """On suites whose optimum is total/N, the longest shard stays within LPT's bound of it."""
    durations, opt = perfect_skewed(seed, count)
    tests = list(durations)
    total = sum(durations.values())
    lower_bound = max(*durations.values(), total / count)
    assert lower_bound == pytest.approx(opt)  # the optimum is reached: every shard at 100 s
    shards = plan_shards(tests, durations, count)
    assert len(shards) == count
    assert_covers_once(shards, tests)
    assert makespan(shards, durations) <= lpt_factor(count) * opt + 1e-9


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_balance_within_the_lpt_bound_of_the_exact_optimum(seed: int, count: int) -> None:
    """On small random skewed suites, against the optimum found by exhaustive search (the bound
    is relative to the optimum, which max(longest, total/N) only bounds from below)."""
    rng = random.Random(1000 + seed)
    costs = [rng.uniform(5, 30) for _ in range(3)] + [rng.uniform(0.1, 3) for _ in range(8)]
    durations = {f"tests/test_{i % 3}.py::test_{i:02d}": c for i, c in enumerate(costs)}
    shards = plan_shards(list(durations), durations, count)
    assert_covers_once(shards, list(durations))
    opt = optimum(costs, count)
    assert opt >= max(*costs, sum(costs) / count) - 1e-9
    assert makespan(shards, durations) <= lpt_factor(count) * opt + 1e-9


def test_predicted_is_the_sum_of_the_shards_prices() -> None:
    """Each shard's predicted seconds are what its tests cost (unknown ones priced too)."""
    durations = {"tests/a.py::t1": 4.0, "tests/a.py::t2": 2.0, "tests/b.py::t1": 1.0}
    tests = [*durations, "tests/a.py::new", "tests/c.py::new"]
    cost = prices(tests, durations)
    for shard in plan_shards(tests, durations, 2):
        assert shard.predicted == pytest.approx(sum(cost[t] for t in shard.tests))
        assert list(shard.tests) == sorted(shard.tests)


def test_a_plan_needs_a_shard() -> None:
    with pytest.raises(ValueError, match="at least one shard, not 0"):
        plan_shards(["tests/a.py::t"], {}, 0)


# --- one plan on every machine --------------------------------------------------------------


@pytest.mark.parametrize("keep_together", ["none", "module", "class"])
@pytest.mark.parametrize("seed", range(4))
def test_plan_does_not_depend_on_input_order(seed: int, keep_together: str) -> None:
    """Shuffled test ids and a shuffled durations file give the same plan and fingerprint."""
    rng = random.Random(seed)
    tests = [
        f"tests/test_{rng.randint(0, 4)}.py::{rng.choice(['', 'TestA::', 'TestB::'])}test_{i}"
        for i in range(60)
    ]
    # Few distinct figures: many equal costs, so ties decide much of the plan. Some tests are
    # unknown, some in a file with nothing recorded: they are priced from the others.
    durations = {t: rng.choice([0.5, 1.0, 1.0, 2.0, 3.0]) for t in tests[:45]}
    tests += [f"tests/test_new.py::test_{i}" for i in range(6)]
    reference = plan_shards(tests, durations, 4, keep_together)
    for _ in range(5):
        shuffled_tests = rng.sample(tests, len(tests))
        items = list(durations.items())
        rng.shuffle(items)
        again = plan_shards(shuffled_tests, dict(items), 4, keep_together)
        assert again == reference
        assert plan_digest(again) == plan_digest(reference)


def test_equal_costs_are_placed_in_node_id_order() -> None:
    """Ties go by node id: the first id to the first shard, whatever order the ids came in."""
    tests = ["tests/t.py::test_b", "tests/t.py::test_d", "tests/t.py::test_a", "tests/t.py::test_c"]
    shards = plan_shards(tests, {t: 1.0 for t in tests}, 2)
    assert [s.tests for s in shards] == [
        ("tests/t.py::test_a", "tests/t.py::test_c"),
        ("tests/t.py::test_b", "tests/t.py::test_d"),
    ]
    # Unknown tests all cost the same: the same rule.
    assert plan_shards(tests, {}, 2) == shards


def test_equal_costs_of_split_units_are_placed_in_node_id_order() -> None:
    """When keep-together gives way, the split tests still take ties in node id order."""
    tests = ["tests/b.py::test_1", "tests/a.py::test_1", "tests/a.py::test_2"]
    shards = plan_shards(tests, {t: 1.0 for t in tests}, 3, keep_together="module")
    assert [s.tests for s in shards] == [
        ("tests/a.py::test_1",),
        ("tests/a.py::test_2",),
        ("tests/b.py::test_1",),
    ]


def test_duplicate_ids_are_planned_once() -> None:
    shards = plan_shards(["tests/a.py::t", "tests/a.py::t", "tests/a.py::u"], {}, 2)
    assert_covers_once(shards, ["tests/a.py::t", "tests/a.py::u"])


# --- prices ---------------------------------------------------------------------------------


def test_prices_of_recorded_and_unknown_tests() -> None:
    """Recorded: its figure; unknown in a known file: the file's median; unknown file: the
    median of every recorded test."""
    durations = {
        "tests/a.py::t1": 1.0,
        "tests/a.py::t2": 3.0,
        "tests/a.py::t3": 8.0,
        "tests/b.py::t1": 10.0,
    }
    tests = ["tests/a.py::t3", "tests/a.py::new", "tests/b.py::new", "tests/c.py::new"]
    assert prices(tests, durations) == {
        "tests/a.py::t3": 8.0,
        "tests/a.py::new": 3.0,
        "tests/b.py::new": 10.0,
        "tests/c.py::new": 5.5,
    }


def test_prices_with_nothing_recorded_are_one_second() -> None:
    assert prices(["tests/a.py::t", "tests/b.py::T::t[1]"], {}) == {
        "tests/a.py::t": 1.0,
        "tests/b.py::T::t[1]": 1.0,
    }


def test_prices_of_a_class_test_use_its_file() -> None:
    """A parametrized method's file is the part before the first ``::``."""
    durations = {"tests/a.py::TestK::test_y[1]": 6.0, "tests/b.py::t": 1.0}
    assert prices(["tests/a.py::TestK::test_y[2]"], durations) == {
        "tests/a.py::TestK::test_y[2]": 6.0
    }


# --- no empty shards --------------------------------------------------------------------------


def nine_tests() -> list[str]:
    """Two modules, one with a class: fewer modules (2) and classes than 4 shards."""
    return [
        *(f"tests/a.py::TestK::test_{i}" for i in range(4)),
        *(f"tests/b.py::test_{i}" for i in range(5)),
    ]


@pytest.mark.parametrize("keep_together", ["none", "module", "class"])
@pytest.mark.parametrize("priced", ["recorded", "all zero", "unknown"])
def test_no_empty_shard_while_there_are_enough_tests(priced: str, keep_together: str) -> None:
    """Every shard gets a test, even when every test costs 0 and when keep-together leaves
    fewer units than shards."""
    tests = nine_tests()
    durations = {
        "recorded": {t: float(i + 1) for i, t in enumerate(tests)},
        "all zero": dict.fromkeys(tests, 0.0),
        "unknown": {},
    }[priced]
    for count in (2, 4, 9):
        shards = plan_shards(tests, durations, count, keep_together)
        assert all(shard.tests for shard in shards), (count, shards)
        assert_covers_once(shards, tests)


def test_fewer_tests_than_shards_leaves_the_rest_empty() -> None:
    shards = plan_shards(["tests/a.py::t1", "tests/a.py::t2"], {}, 4, keep_together="module")
    assert [len(s.tests) for s in shards] == [1, 1, 0, 0]
    assert plan_shards([], {}, 3) == [Shard(i, (), 0.0) for i in range(3)]


# --- keep together ----------------------------------------------------------------------------


def grouped_suite() -> tuple[list[str], dict[str, float]]:
    """Six modules, some with classes; one module is long, so a per-test plan cuts it."""
    tests = []
    for m in range(6):
        for c in ("TestA", "TestB"):
            tests += [f"tests/test_m{m}.py::{c}::test_{i}" for i in range(3)]
        tests += [f"tests/test_m{m}.py::test_free_{i}" for i in range(2)]
    durations = {t: (3.0 if "test_m0" in t else 1.0) for t in tests}
    return tests, durations


def units_in(shards: list[Shard], keep_together: str) -> dict[str, set[int]]:
    where: dict[str, set[int]] = {}
    for shard in shards:
        for test in shard.tests:
            where.setdefault(unit_of(test, keep_together), set()).add(shard.index)
    return where


@pytest.mark.parametrize("keep_together", ["module", "class"])
def test_keep_together_keeps_units_whole(keep_together: str) -> None:
    tests, durations = grouped_suite()
    # Planned test by test, the same suite splits modules and classes: the check below bites.
    loose = units_in(plan_shards(tests, durations, 3), keep_together)
    assert any(len(shards) > 1 for shards in loose.values())
    shards = plan_shards(tests, durations, 3, keep_together)
    assert_covers_once(shards, tests)
    assert all(len(where) == 1 for where in units_in(shards, keep_together).values())


def test_keep_together_gives_way_only_for_the_costliest_units() -> None:
    """Two modules, three shards: the costlier module is split, the other stays whole."""
    tests = [f"tests/big.py::test_{i}" for i in range(4)] + ["tests/small.py::test_1"]
    tests += ["tests/small.py::test_2"]
    durations = {t: (5.0 if "big" in t else 1.0) for t in tests}
    shards = plan_shards(tests, durations, 3, keep_together="module")
    assert all(shard.tests for shard in shards)
    assert len(units_in(shards, "module")["tests/small.py"]) == 1


def test_unit_of() -> None:
    nodeid = "tests/a/test_x.py::TestK::test_y[1]"
    assert unit_of(nodeid, "none") == nodeid
    assert unit_of(nodeid, "module") == "tests/a/test_x.py"
    assert unit_of(nodeid, "class") == "tests/a/test_x.py::TestK"
    assert unit_of("tests/a.py::TestK::TestIn::test_z", "class") == "tests/a.py::TestK::TestIn"
    assert unit_of("tests/a.py::test_f", "class") == "tests/a.py::test_f"  # no class: itself


# --- shard specs and two-level shares ----------------------------------------------------------


def test_parse_shard() -> None:
    assert parse_shard("2/3", "x") == ShardSpec(2, 3)
    assert parse_shard(" 1/1\n", "x") == ShardSpec(1, 1)
    assert str(parse_shard("03/10", "x")) == "3/10"


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "1/", "/3", "-1/3", "1.5/3", "a/b"])
def test_bad_shard_names_the_value_and_its_source(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_shard(text, "the environment variable NOXLIB_SHARD")
    message = str(info.value)
    assert f"Invalid shard {text!r} from the environment variable NOXLIB_SHARD" in message
    assert "NOXLIB_SHARD=2/3" in message  # says what a good one looks like


def test_shard_of_non_ascii_digits_is_a_usage_error() -> None:
    """``str.isdigit`` accepts superscripts that ``int`` refuses: still a UsageError."""
    with pytest.raises(UsageError, match="Invalid shard '²/3' from CI_NODE_INDEX"):
        parse_shard("²/3", "CI_NODE_INDEX")


def skewed_suite(seed: int, size: int) -> tuple[list[str], dict[str, float]]:
    rng = random.Random(seed)
    tests = [f"tests/test_{rng.randint(0, 6)}.py::test_{i}" for i in range(size)]
    durations = {t: rng.choice([30.0, 0.2, 0.5, 1.0, 1.0, 2.0]) for t in tests[: size * 3 // 4]}
    return tests, durations


@pytest.mark.parametrize("seed", range(3))
def test_two_levels_split_the_global_share_exactly(seed: int) -> None:
    """Local shares 1/2 and 2/2 of global shard 2/3 are disjoint and make up 2/3 exactly."""
    tests, durations = skewed_suite(seed, 40)
    whole, plans = select_share(tests, durations, [ShardSpec(2, 3)])
    assert plans == [plan_shards(tests, durations, 3)]
    assert whole == set(plans[0][1].tests)
    first, first_plans = select_share(tests, durations, [ShardSpec(2, 3), ShardSpec(1, 2)])
    second, second_plans = select_share(tests, durations, [ShardSpec(2, 3), ShardSpec(2, 2)])
    assert first
    assert second
    assert not first & second
    assert first | second == whole
    assert first_plans == second_plans  # both local shards made the same two plans
    assert first_plans[1] == plan_shards(sorted(whole), durations, 2)


def test_global_shares_cover_the_suite(tmp_path: Path) -> None:
    """Every K of N, each through choose() from its environment, runs each test once."""
    tests, durations = skewed_suite(7, 30)
    path = tmp_path / "durations.json"
    write_durations(path, durations)
    seen: list[str] = []
    digests = set()
    for k in (1, 2, 3):
        env = {SHARDS_ENV: f"{k}/3", DURATIONS_ENV: str(path)}
        keep, event = choose(PartFiles(tmp_path / f"p{k}"), tests, env)
        seen += keep
        assert event["how"] == "shard"
        assert event["shard"] == f"{k}/3"
        assert event["count"] == len(keep)
        assert event["predicted"] == pytest.approx(sum(prices(sorted(keep), durations).values()))
        digests.add(str(event["plans"]))
    assert sorted(seen) == sorted(set(tests))
    assert len(digests) == 1  # one plan: the same fingerprint in every shard


def test_choose_a_list_runs_exactly_the_listed_ids_that_were_collected(tmp_path: Path) -> None:
    """The list of a relaunch wins over the shard setting; ids not collected are ignored."""
    select = write_ids(tmp_path / "select.jsonl", ["tests/a.py::t2", "tests/a.py::gone"])
    with select.open("a") as out:
        out.write("\n")  # an empty line is no id
    env = {SELECT_ENV: str(select), SHARDS_ENV: "1/2"}
    keep, event = choose(PartFiles(tmp_path), ["tests/a.py::t1", "tests/a.py::t2"], env)
    assert keep == {"tests/a.py::t2"}
    assert event == {"event": "selected", "how": "list", "count": 1, "predicted": 1.0}
    keep, event = choose(PartFiles(tmp_path), ["tests/a.py::t1", "tests/a.py::t2"], {})
    assert keep == {"tests/a.py::t1", "tests/a.py::t2"}
    assert event["how"] == "all"


def test_part_events_skip_a_torn_line(tmp_path: Path) -> None:
    """A process killed while writing an event leaves half a line; the others are read."""
    files = PartFiles(tmp_path)
    files.event({"event": "collected", "count": 2})
    with files.meta.open("a") as out:
        out.write('{"event": "sel')
    assert files.events() == [{"event": "collected", "count": 2}]
    offset = files.meta.stat().st_size
    with files.meta.open("a") as out:
        out.write("\n")
    files.event({"event": "finished", "exitstatus": 0})
    assert files.events(offset) == [{"event": "finished", "exitstatus": 0}]


def test_a_part_tells_how_long_its_first_process_took_to_collect(tmp_path: Path) -> None:
    files = PartFiles(tmp_path / "part")
    files.dir.mkdir()
    assert files.collection_seconds() is None  # it never got as far
    files.write_collected(["a.py::t"], 2.5)
    files.write_collected(["a.py::t"], 9.0)  # a relaunched process: the first one counts
    assert files.collection_seconds() == 2.5
