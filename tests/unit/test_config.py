"""[tool.noxlib] validation: every bad input names key, value, file and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.config import Config, ConfigError, load_config, parse_size

GOOD = """
[tool.noxlib]
install = ["-e", ".[test]"]
default-groups = ["unit"]
memory-per-worker = "512MiB"
max-workers = 4
dist = "loadscope"
ci-timeout = 120

[tool.noxlib.coverage]
source = ["pkg"]
fail-under = 80

[tool.noxlib.groups.unit]
paths = ["tests/unit"]
description = "Fast unit tests"
markers = "not slow"

[tool.noxlib.groups.db]
paths = ["tests/db"]
"""


def project(tmp_path: Path, text: str, dirs: tuple[str, ...] = ("tests/unit", "tests/db")) -> Path:
    for d in dirs:
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def load_error(
    tmp_path: Path, text: str, dirs: tuple[str, ...] = ("tests/unit", "tests/db")
) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(project(tmp_path, text, dirs))
    return str(info.value)


def test_a_full_table_is_read_into_the_dataclasses(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, GOOD))
    assert isinstance(config, Config)
    assert config.install == ("-e", ".[test]")
    assert config.default_groups == ("unit",)
    assert config.memory_per_worker == 512 * 2**20
    assert (config.max_workers, config.dist, config.ci_timeout) == (4, "loadscope", 120.0)
    assert config.coverage.source == ("pkg",)
    assert config.coverage.fail_under == 80.0
    unit = config.groups["unit"]
    assert (unit.paths, unit.description, unit.markers) == (
        ("tests/unit",),
        "Fast unit tests",
        "not slow",
    )
    assert config.groups["db"].markers is None


def test_defaults_fill_what_is_left_out(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, '[tool.noxlib.groups.unit]\npaths = ["tests/unit"]'))
    assert config.install == (".",)
    assert config.default_groups == ("unit",)  # every group when default-groups is not set
    assert config.memory_per_worker == 2 * 2**30
    assert config.max_workers == 8
    assert config.dist == "load"
    assert config.relaunch_cap == 50
    assert config.coverage.enabled
    assert config.coverage.branch


def test_unknown_key_names_it_and_suggests_the_right_one(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD.replace("max-workers", "max-worker"))
    assert "tool.noxlib.max-worker = 4" in message
    assert "did you mean 'max-workers'?" in message
    assert str(tmp_path / "pyproject.toml") in message


def test_wrong_type_names_key_value_and_fix(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD.replace("max-workers = 4", 'max-workers = "four"'))
    assert "tool.noxlib.max-workers = 'four'" in message
    assert "whole number of at least 1" in message


def test_group_path_that_does_not_exist(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD, dirs=("tests/unit",))
    assert "tool.noxlib.groups.db.paths = 'tests/db'" in message
    assert "no such path" in message


def test_all_problems_come_in_one_message(tmp_path: Path) -> None:
    text = GOOD.replace('dist = "loadscope"', 'dist = "fast"').replace(
        'memory-per-worker = "512MiB"', 'memory-per-worker = "lots"'
    )
    message = load_error(tmp_path, text)
    assert "tool.noxlib.dist = 'fast'" in message
    assert "loadscope" in message  # the valid choices are listed
    assert "tool.noxlib.memory-per-worker = 'lots'" in message


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ('default-groups = ["unit"]', 'default-groups = ["nope"]', "default-groups = 'nope'"),
        ('markers = "not slow"', "markers = 3", "groups.unit.markers = 3"),
        ('markers = "not slow"', 'coverage = "no"', "groups.unit.coverage = 'no'"),
        ('description = "Fast unit tests"', "colour = 1", "groups.unit.colour = 1"),
        ("fail-under = 80", "fail-under = 120", "coverage.fail-under = 120"),
        ('source = ["pkg"]', "sources = []", "did you mean 'source'?"),
        ('install = ["-e", ".[test]"]', 'install = "-e ."', "tool.noxlib.install = '-e .'"),
        ("ci-timeout = 120", "ci-timeout = -1", "tool.noxlib.ci-timeout = -1"),
        (
            "ci-timeout = 120",
            "relaunch-cap = 0",
            "tool.noxlib.relaunch-cap = 0: expected a whole number of at least 1",
        ),
        (
            'markers = "not slow"',
            'markers = "not (slow"',
            "groups.unit.markers = 'not (slow': pytest cannot parse it as -m (at column 10: "
            "expected right parenthesis; got end of input)",
        ),
        (
            'memory-per-worker = "512MiB"',
            'memory-per-worker = "63MiB"',
            "tool.noxlib.memory-per-worker = '63MiB': expected a size of at least 64MiB",
        ),
    ],
)
def test_each_bad_value_is_named(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    assert replace in GOOD
    assert expected in load_error(tmp_path, GOOD.replace(replace, by))


def test_group_name_must_be_an_identifier(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[tool.noxlib.groups."a b"]\npaths = ["tests/unit"]')
    assert "groups.a b" in message
    assert "letters" in message


def test_no_file_or_no_table_assumes_one_group_of_what_pytest_collects(tmp_path: Path) -> None:
    bare = load_config(tmp_path)
    assert list(bare.groups) == ["all"]
    assert bare.groups["all"].paths == ()  # pytest's own testpaths, or the folder
    assert (bare.default_groups, bare.install, bare.dependency_groups) == (("all",), (), ())
    assert bare.assumed == (
        "group all = what plain pytest collects here",
        "nothing installed (no project here)",
    )
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname='x'\n[dependency-groups]\ntests = ['hypothesis']\nlint = ['ruff']\n"
    )
    project = load_config(tmp_path)
    assert (project.install, project.dependency_groups) == ((".",), ("tests",))
    assert project.group_requirements == ("hypothesis",)
    assert project.assumed[1:] == ("install .", "dependency group tests")


def test_a_table_means_no_assumption_and_bad_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.noxlib.groups.unit]\npaths = ["tests"]\n')
    assert load_config(tmp_path).assumed == ()
    (tmp_path / "pyproject.toml").write_text("[tool.noxlib\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


def test_a_table_without_groups_runs_what_pytest_collects(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.noxlib]\ninstall = []\n")
    config = load_config(tmp_path)
    assert list(config.groups) == ["all"]
    assert config.groups["all"].paths == ()
    assert config.default_groups == ("all",)
    assert config.install == ()
    assert config.assumed == ("group all = what plain pytest collects here",)
    assert config.assumed_because == "no groups in the [tool.noxlib] table"


def test_empty_groups_are_refused(tmp_path: Path) -> None:
    assert "define at least one group" in load_error(tmp_path, "[tool.noxlib]\ngroups = {}\n")


def test_default_groups_without_groups_may_name_only_all(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[tool.noxlib]\ndefault-groups = ["unit"]\n')
    assert "default-groups = 'unit': no such group; groups are: all" in message


@pytest.mark.parametrize(
    ("text", "size"), [("2GiB", 2 * 2**30), ("512 MB", 512 * 10**6), ("1.5GiB", 3 * 2**29)]
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_rejects_numbers_without_unit() -> None:
    with pytest.raises(ValueError, match="2048"):
        parse_size("2048")


TRIAGE_KEYS = """
triage = false
triage-max = 10
triage-reruns = 3
tolerate-flaky = true
flaky-threshold = 2.5
auto-rollback = true
"""


def test_the_triage_keys_and_their_defaults(tmp_path: Path) -> None:
    defaults = load_config(project(tmp_path, GOOD))
    assert (defaults.triage, defaults.triage_max, defaults.triage_reruns) == (True, 50, 2)
    assert (defaults.tolerate_flaky, defaults.flaky_threshold, defaults.auto_rollback) == (
        False,
        5.0,
        False,
    )
    text = GOOD.replace("ci-timeout = 120", "ci-timeout = 120" + TRIAGE_KEYS)
    config = load_config(project(tmp_path, text))
    assert (config.triage, config.triage_max, config.triage_reruns) == (False, 10, 3)
    assert (config.tolerate_flaky, config.flaky_threshold, config.auto_rollback) == (
        True,
        2.5,
        True,
    )


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("triage", '"yes"', "expected true or false"),
        ("triage-max", "-1", "whole number >= 0"),
        ("triage-reruns", "0", "whole number >= 1"),
        ("tolerate-flaky", "1", "expected true or false"),
        ("flaky-threshold", "120", "percentage from 0 to 100"),
        ("flaky-threshold", "nan", "percentage from 0 to 100"),
        ("auto-rollback", '"on"', "expected true or false"),
        ("gc-freeze", '"no"', "expected true or false"),
    ],
)
def test_bad_triage_values_are_named_with_their_fix(
    tmp_path: Path, key: str, value: str, fix: str
) -> None:
    message = load_error(tmp_path, GOOD.replace("ci-timeout = 120", f"{key} = {value}"))
    assert f"tool.noxlib.{key} = " in message
    assert fix in message


ECOSYSTEM = """
[dependency-groups]
test = ["pytest>=8", {include-group = "typing"}]
typing = ["mypy"]

[tool.noxlib]
python = ["3.11", "3.12", "3.13t", "pypy3.10"]
dependency-groups = ["test"]

[tool.noxlib.groups.unit]
paths = ["tests/unit"]
"""


def test_python_versions_and_dependency_groups_are_read(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, ECOSYSTEM))
    assert config.python == ("3.11", "3.12", "3.13t", "pypy3.10")
    assert config.dependency_groups == ("test",)
    assert config.group_requirements == ("pytest>=8", "mypy")


def test_without_the_settings_there_is_no_matrix_and_no_group(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, GOOD))
    assert config.python == ()
    assert config.group_requirements == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "[3.10, 3.11]",
            "tool.noxlib.python = 3.1: a number; write each version as a string, "
            'e.g. python = ["3.11", "3.12"]',
        ),
        (
            '["3.11", "python3.12"]',
            "tool.noxlib.python = 'python3.12': not a Python version nox can find; "
            'e.g. python = ["3.11", "3.12"]',
        ),
        ('["3.11", "3.11"]', "tool.noxlib.python = '3.11': listed twice; list each version once"),
        (
            '"3.11"',
            "tool.noxlib.python = '3.11': expected a non-empty list of Python versions, "
            'e.g. python = ["3.11", "3.12"]',
        ),
        ("[]", "tool.noxlib.python = []: expected a non-empty list"),
    ],
)
def test_a_malformed_python_list_is_named_with_its_fix(
    tmp_path: Path, value: str, expected: str
) -> None:
    text = ECOSYSTEM.replace('python = ["3.11", "3.12", "3.13t", "pypy3.10"]', f"python = {value}")
    message = load_error(tmp_path, text)
    assert expected in message
    assert str(tmp_path / "pyproject.toml") in message


def test_an_unknown_dependency_group_stops_loading_with_the_groups(tmp_path: Path) -> None:
    text = ECOSYSTEM.replace('dependency-groups = ["test"]', 'dependency-groups = ["tests"]')
    message = load_error(tmp_path, text)
    assert "tool.noxlib.dependency-groups names 'tests'" in message
    assert "did you mean 'test'?" in message
    assert str(tmp_path / "pyproject.toml") in message


def test_dependency_groups_must_be_a_list_of_names(tmp_path: Path) -> None:
    text = ECOSYSTEM.replace('dependency-groups = ["test"]', 'dependency-groups = "test"')
    assert "tool.noxlib.dependency-groups = 'test': expected a list of [dependency-groups]" in (
        load_error(tmp_path, text)
    )


def test_every_problem_is_one_sentence_with_one_full_stop(tmp_path: Path) -> None:
    text = GOOD.replace('dist = "loadscope"', 'dist = "fast"').replace(
        'source = ["pkg"]', "sources = []"
    )
    lines = [line for line in load_error(tmp_path, text).splitlines() if line.startswith("  - ")]
    assert len(lines) == 2
    assert all(line.endswith((".", "?")) and not line.endswith("..") for line in lines), lines


def test_a_64mib_worker_is_the_smallest_accepted(tmp_path: Path) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "db").mkdir(parents=True)
    text = GOOD.replace('memory-per-worker = "512MiB"', 'memory-per-worker = "64MiB"')
    (tmp_path / "pyproject.toml").write_text(text)
    assert load_config(tmp_path).memory_per_worker == 64 * 2**20
