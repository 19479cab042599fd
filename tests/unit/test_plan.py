"""Posargs, workers and the pytest command line: pure decisions, no nox."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from noxlib.choice import Engine, known_durations
from noxlib.config import Config, CoverageSettings, Group
from noxlib.entry import banner
from noxlib.errors import UsageError
from noxlib.groups import marker_expression
from noxlib.history import Flakiness
from noxlib.machine import Machine
from noxlib.parts import ShardSpec
from noxlib.plan import (
    MODES,
    deselected,
    make_plan,
    may_split_by_file,
    measures_coverage,
    parse_worker_setting,
    pytest_args,
    resolve_shard,
    resolve_workers,
)

GiB = 2**30
BIG = Machine(cpus=2, available_memory=22 * GiB)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_x.py").write_text("")
    return Config(
        root=tmp_path,
        groups={
            "unit": Group("unit", ("tests/unit",), "Fast unit tests", "not slow"),
            "tpch": Group("tpch", ("tests/tpch",), "TPC-H differential suite"),
        },
        default_groups=("unit",),
        max_workers=8,
    )


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "", " two "])
def test_bad_worker_values_are_rejected_with_their_source(value: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_worker_setting(value, "the environment variable PYTEST_WORKERS")
    message = str(info.value)
    assert repr(value) in message
    assert "from the environment variable PYTEST_WORKERS" in message
    assert "PYTEST_WORKERS=1" in message  # says how to fix it


def test_worker_values() -> None:
    assert parse_worker_setting("auto", "x") == "auto"
    assert parse_worker_setting(" AUTO ", "x") == "auto"
    assert parse_worker_setting("3", "x") == 3


def test_tests_session_is_serial_unless_workers_set(config: Config) -> None:
    workers = resolve_workers({}, MODES["tests"], config, BIG)
    assert workers.count == 1
    assert "serial unless PYTEST_WORKERS is set" in workers.reason
    assert resolve_workers({"PYTEST_WORKERS": "2"}, MODES["tests"], config, BIG).count == 2


def test_auto_is_the_minimum_of_cpus_memory_and_cap(config: Config) -> None:
    auto = resolve_workers({}, MODES["tests-parallel"], config, BIG)
    assert auto.count == 2
    assert auto.reason == "2 workers: 2 CPUs; memory allows 11; cap 8"
    low_memory = Machine(cpus=16, available_memory=5 * GiB)
    assert resolve_workers({}, MODES["ci"], config, low_memory).count == 2
    many_cpus = Machine(cpus=64, available_memory=500 * GiB)
    capped = resolve_workers({}, MODES["ci"], config, many_cpus)
    assert capped.count == 8
    assert capped.reason.endswith("cap 8")


def test_auto_never_goes_below_one(config: Config) -> None:
    tiny = Machine(cpus=4, available_memory=GiB // 2)
    assert resolve_workers({}, MODES["ci"], config, tiny).count == 1


def test_rollback_to_one_worker(config: Config) -> None:
    workers = resolve_workers({"PYTEST_WORKERS": "1"}, MODES["ci"], config, BIG)
    assert (workers.count, workers.reason) == (1, "1 worker: PYTEST_WORKERS=1")


def test_explicit_count_is_exact_and_warns_past_cpus_and_memory(config: Config) -> None:
    exact = resolve_workers({"PYTEST_WORKERS": "6"}, MODES["ci"], config, BIG)
    assert (exact.count, exact.explicit) == (6, True)
    small = Machine(cpus=2, available_memory=7 * GiB)
    workers = resolve_workers({"PYTEST_WORKERS": "6"}, MODES["ci"], config, small)
    assert workers.count == 6
    assert "exactly PYTEST_WORKERS=6" in workers.reason
    assert "more than the 2 CPUs" in workers.reason
    assert "more than memory allows (3 at memory-per-worker 2 GiB)" in workers.reason


def test_explicit_count_is_never_overruled_by_the_durations(config: Config) -> None:
    # The same durations make auto choose serial (see the test below); a number does not.
    env = {"PYTEST_WORKERS": "2"}
    plan = make_plan(MODES["tests-parallel"], [], env, config, BIG, durations=_ids(20, 0.01))
    assert (plan.engine.name, plan.workers.count) == ("shards", 2)
    assert "2 processes were asked for" in plan.engine.reason


def test_bad_env_value_names_the_variable(config: Config) -> None:
    with pytest.raises(UsageError, match="'abc' from the environment variable PYTEST_WORKERS"):
        resolve_workers({"PYTEST_WORKERS": "abc"}, MODES["ci"], config, BIG)


def test_leading_group_words_select_groups_rest_goes_to_pytest(config: Config) -> None:
    plan = make_plan(MODES["ci"], ["tpch", "-k", "q01", "-x"], {}, config, BIG)
    assert [g.name for g in plan.groups] == ["tpch"]
    assert plan.user_args == ("-k", "q01", "-x")
    args = pytest_args(plan, config)
    assert args[0] == "tests/tpch"
    assert args[-3:] == ["-k", "q01", "-x"]  # verbatim and last, so they win


def test_no_group_means_default_groups(config: Config) -> None:
    plan = make_plan(MODES["tests"], ["-k", "fast"], {}, config, BIG)
    assert [g.name for g in plan.groups] == ["unit"]


def test_an_existing_path_replaces_the_default_group_paths(config: Config) -> None:
    plan = make_plan(MODES["tests"], ["tests/unit/test_x.py::test_a"], {}, config, BIG)
    args = pytest_args(plan, config)
    assert "tests/unit" not in args
    assert args[-1] == "tests/unit/test_x.py::test_a"


def test_unknown_bare_word_lists_the_groups(config: Config) -> None:
    with pytest.raises(UsageError) as info:
        make_plan(MODES["ci"], ["tcph"], {}, config, BIG)
    message = str(info.value)
    assert "'tcph' (after --) is neither a test group nor an existing path" in message
    assert "unit  Fast unit tests" in message
    assert "tpch  TPC-H differential suite" in message


def test_serial_is_one_process_with_xdist_loaded_and_xdist_engine_passes_n_and_dist(
    config: Config,
) -> None:
    serial = pytest_args(make_plan(MODES["tests"], [], {}, config, BIG), config)
    # -n 0: no worker process, but xdist's worker_id fixture and an addopts -n keep working.
    assert serial[serial.index("-n") + 1] == "0"
    assert "no:xdist" not in serial
    xdist = make_plan(MODES["tests-parallel"], [], {"NOXLIB_ENGINE": "xdist"}, config, BIG)
    args = pytest_args(xdist, config)
    assert args[args.index("-n") + 1] == "2"
    assert args[args.index("--dist") + 1] == "load"
    shards = make_plan(MODES["tests-parallel"], [], {}, config, BIG)
    assert shards.engine.name == "shards"
    assert "--dist" not in pytest_args(shards, config)


def test_ci_mode_adds_junit_timeout_and_no_maxfail(config: Config, tmp_path: Path) -> None:
    junit = tmp_path / "part" / "junit.xml"
    args = pytest_args(make_plan(MODES["ci"], ["unit"], {}, config, BIG), config, junit)
    assert args[args.index("--junitxml") + 1] == str(junit)
    assert args[args.index("--timeout") + 1] == "600"
    assert "--maxfail=0" in args
    assert "--continue-on-collection-errors" in args  # a broken module hides no other test
    plain = pytest_args(make_plan(MODES["tests"], ["unit"], {}, config, BIG), config)
    assert "--junitxml" not in plain
    assert "--timeout" not in plain


def test_marker_expressions(config: Config) -> None:
    unit, tpch = config.groups["unit"], config.groups["tpch"]
    assert marker_expression([unit]) == "not slow"
    assert marker_expression([tpch]) is None
    assert marker_expression([unit, tpch]) == (
        "(noxlib_group_unit and (not slow)) or noxlib_group_tpch"
    )


def test_banner_says_mode_workers_and_why(config: Config) -> None:
    plan = make_plan(MODES["ci"], ["tpch"], {}, config, BIG)
    text = banner(plan, config)
    assert "session ci" in text
    assert "groups: tpch" in text
    assert (
        "engine shards (auto): no recorded durations yet; 2 workers: 2 CPUs; memory allows 11;"
        in text
    )


def _ids(count: int, seconds: float, folder: str = "tests/unit") -> dict[str, float]:
    return {f"{folder}/test_x.py::test_{i:03d}": seconds for i in range(count)}


def test_auto_engine_goes_serial_when_durations_say_parallel_cannot_win(config: Config) -> None:
    tiny = make_plan(MODES["tests-parallel"], [], {}, config, BIG, durations=_ids(20, 0.01))
    assert tiny.engine.name == "serial"
    assert not tiny.parallel
    assert "parallel cannot win" in tiny.engine.reason
    # 20 tests of 10 ms: "200 ms serially", not "0.2 s", and never "0.0 s" for a few fast ones.
    assert "against 200 ms serially" in tiny.engine.reason
    few = make_plan(MODES["tests-parallel"], [], {}, config, BIG, durations=_ids(7, 0.001))
    assert "against 7 ms serially" in few.engine.reason
    assert "serial, engine serial (auto): recorded durations predict 2 shards" in banner(
        tiny, config
    )
    big = make_plan(MODES["tests-parallel"], [], {}, config, BIG, durations=_ids(20, 1.0))
    assert big.engine.name == "shards"
    assert "2 shards 10.5 s against 20.0 s serially" in big.engine.reason


def test_auto_engine_only_counts_the_tests_the_run_collects(config: Config) -> None:
    # Slow tests of another group must not make a run of this group look worth splitting.
    durations = {**_ids(20, 0.01), **_ids(20, 5.0, folder="tests/tpch")}
    plan = make_plan(MODES["tests-parallel"], ["unit"], {}, config, BIG, durations=durations)
    assert plan.engine.name == "serial"


def test_engine_from_option_then_environment_then_setting(config: Config) -> None:
    env = {"NOXLIB_ENGINE": "xdist"}
    plan = make_plan(MODES["ci"], ["unit", "--engine", "shards"], env, config, BIG)
    assert plan.engine == Engine("shards", "engine shards from --engine")
    plan = make_plan(MODES["ci"], ["unit"], env, config, BIG)
    assert (
        plan.engine.reason
        == "engine xdist (--dist load) from the environment variable NOXLIB_ENGINE"
    )
    with pytest.raises(UsageError, match="Invalid engine 'fast' from the environment variable"):
        make_plan(MODES["ci"], [], {"NOXLIB_ENGINE": "fast"}, config, BIG)
    one = make_plan(MODES["ci"], ["--engine", "xdist"], {"PYTEST_WORKERS": "1"}, config, BIG)
    assert one.engine.name == "serial"  # PYTEST_WORKERS=1 always wins


def test_pdb_runs_serially_and_says_why(config: Config) -> None:
    plan = make_plan(MODES["tests-parallel"], ["--pdb"], {}, config, BIG)
    assert plan.engine.name == "serial"
    assert "--pdb and --trace need the one process you type into" in banner(plan, config)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"NOXLIB_SHARD": "2/3"}, "2/3"),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "4"}, "1/4"),  # GitLab counts from 1
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "2"}, "1/2"),  # CircleCI from 0
        ({"BUILDKITE_PARALLEL_JOB": "2", "BUILDKITE_PARALLEL_JOB_COUNT": "3"}, "3/3"),
        ({"NOXLIB_SHARD": "1/3", "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, "1/3"),
        ({"NOXLIB_SHARD": "1/1"}, None),
        ({}, None),
    ],
)
def test_shard_from_noxlib_or_the_ci_providers_variables(
    env: dict[str, str], expected: str | None
) -> None:
    spec = resolve_shard(env)
    assert (str(spec) if spec else None) == expected


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"NOXLIB_SHARD": "4/3"}, ["'4/3' from the environment variable NOXLIB_SHARD", "K/N"]),
        ({"NOXLIB_SHARD": "two"}, ["'two'", "NOXLIB_SHARD=2/3"]),
        ({"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "2"}, ["GitLab's CI_NODE_INDEX='x'"]),
        ({"CIRCLE_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": "2"}, ["CircleCI's", "'3/2'"]),
    ],
)
def test_bad_shard_variables_name_the_value_and_source(
    env: dict[str, str], words: list[str]
) -> None:
    with pytest.raises(UsageError) as info:
        resolve_shard(env)
    for word in words:
        assert word in str(info.value)


def test_a_ci_shard_predicts_only_its_own_share(config: Config) -> None:
    durations = _ids(40, 0.01)
    whole = known_durations(durations, ["tests/unit"], None)
    first = known_durations(durations, ["tests/unit"], ShardSpec(1, 2))
    second = known_durations(durations, ["tests/unit"], ShardSpec(2, 2))
    assert len(whole) == 40
    assert len(first) == len(second) == 20
    assert set(first).isdisjoint(second)


def test_coverage_is_measured_in_ci_and_on_request(config: Config) -> None:
    def measured(mode: str, *posargs: str, cfg: Config = config) -> bool:
        return measures_coverage(make_plan(MODES[mode], list(posargs), {}, cfg, BIG), cfg)

    assert measured("ci")
    assert not measured("tests")
    assert not measured("tests-parallel")
    assert measured("tests", "--coverage")
    assert not measured("ci", "--no-coverage")
    off = replace(config, coverage=CoverageSettings(enabled=False))
    assert not measured("ci", "--coverage", cfg=off)
    everywhere = replace(config, coverage=CoverageSettings(sessions=("tests", "ci")))
    assert measured("tests", cfg=everywhere)


def test_groups_that_measure_nothing_turn_coverage_off_unless_asked(config: Config) -> None:
    (config.root / "tests" / "tpch").mkdir()
    groups = dict(config.groups)
    groups["tpch"] = replace(groups["tpch"], coverage=False)
    cfg = replace(config, groups=groups)

    def measured(*posargs: str) -> bool:
        return measures_coverage(make_plan(MODES["ci"], list(posargs), {}, cfg, BIG), cfg)

    assert not measured("tpch")
    assert measured("tpch", "--coverage")
    assert measured("unit", "tpch")  # one group that measures is enough
    assert measured("unit")


HIGH = Flakiness("tests-parallel", runs=20, parallel_only=2, threshold=5.0)


def test_auto_rollback_makes_auto_one_worker_and_says_why(config: Config) -> None:
    rolled = replace(config, auto_rollback=True)
    plan = make_plan(MODES["tests-parallel"], [], {}, rolled, BIG, flakiness=HIGH)
    assert plan.workers.count == 1
    assert plan.engine.name == "serial"
    text = banner(plan, rolled)
    assert (
        "serial, 1 worker: auto-rollback, parallel-only failures in 2 of the last 20 parallel "
        "runs of tests-parallel (10 %)" in text
    )
    assert "PYTEST_WORKERS=N overrides" in text


def test_auto_rollback_leaves_explicit_counts_and_low_rates_alone(config: Config) -> None:
    rolled = replace(config, auto_rollback=True)
    explicit = make_plan(MODES["ci"], [], {"PYTEST_WORKERS": "2"}, rolled, BIG, flakiness=HIGH)
    assert explicit.workers.count == 2
    low = Flakiness("ci", runs=20, parallel_only=1, threshold=5.0)
    assert make_plan(MODES["ci"], [], {}, rolled, BIG, flakiness=low).workers.count == 2
    # Opt-in: without auto-rollback a high rate only speaks in the banner (sessions.py).
    assert make_plan(MODES["ci"], [], {}, config, BIG, flakiness=HIGH).workers.count == 2


@pytest.mark.parametrize(
    ("posargs", "allowed"),
    [
        ([], False),  # the default group, unit, has markers
        (["tpch"], True),
        (["tpch", "-x", "-v", "--tb=short"], True),
        (["tpch", "-k", "q01"], False),
        (["tpch", "-kq01"], False),
        (["tpch", "-m", "slow"], False),
        (["tpch", "--deselect", "tests/tpch/test_q.py::t"], True),  # named: left out of the plan
        (["tpch", "--lf"], False),
        (["tpch", "--last-failed"], False),
        (["tpch", "--sw"], False),
        (["tests/unit/test_x.py"], False),  # the user's paths are collected by every process
        (["unit"], False),  # a group with markers: the durations include deselected tests
    ],
)
def test_shards_split_by_file_only_when_they_collect_their_groups_whole(
    config: Config, posargs: list[str], allowed: bool
) -> None:
    plan = make_plan(MODES["tests-parallel"], posargs, {}, config, BIG)
    assert may_split_by_file(plan) is allowed


def test_deselected_prefixes_in_both_spellings() -> None:
    args = ["-x", "--deselect", "tests/a.py::t1", "--deselect=tests/b.py", "-v"]
    assert deselected(args) == ("tests/a.py::t1", "tests/b.py")
    assert deselected(["--deselect"]) == ()
