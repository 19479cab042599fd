"""Posargs, workers and the pytest command line: pure decisions, no nox."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.config import Config, Group
from noxlib.errors import UsageError
from noxlib.plan import (
    MODES,
    Machine,
    banner,
    make_plan,
    marker_expression,
    parse_worker_setting,
    pytest_args,
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


def test_explicit_count_passes_cpus_but_not_memory(config: Config) -> None:
    assert resolve_workers({"PYTEST_WORKERS": "6"}, MODES["ci"], config, BIG).count == 6
    small = Machine(cpus=8, available_memory=7 * GiB)
    workers = resolve_workers({"PYTEST_WORKERS": "6"}, MODES["ci"], config, small)
    assert workers.count == 3
    assert "memory allows only 3" in workers.reason


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


def test_serial_disables_xdist_and_parallel_passes_workers_and_dist(config: Config) -> None:
    serial = make_plan(MODES["tests"], [], {}, config, BIG)
    assert "-p" in pytest_args(serial, config)
    assert "no:xdist" in pytest_args(serial, config)
    parallel = make_plan(MODES["tests-parallel"], [], {}, config, BIG)
    args = pytest_args(parallel, config)
    assert args[args.index("-n") + 1] == "2"
    assert args[args.index("--dist") + 1] == "load"
    assert "no:xdist" not in args


def test_ci_mode_adds_junit_timeout_and_no_maxfail(config: Config) -> None:
    args = pytest_args(make_plan(MODES["ci"], ["unit"], {}, config, BIG), config)
    assert args[args.index("--junitxml") + 1] == str(config.root / "reports" / "junit.xml")
    assert args[args.index("--timeout") + 1] == "600"
    assert "--maxfail=0" in args
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
    assert "parallel (--dist load), 2 workers: 2 CPUs; memory allows 11; cap 8" in text
