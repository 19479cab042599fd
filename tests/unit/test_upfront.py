"""The checks nox's noxfile load runs before any venv: pure, on a Config and an environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.config import Config, Group
from noxlib.errors import UsageError
from noxlib.upfront import check_environment, check_request, session_kind


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    return Config(
        root=tmp_path,
        groups={"unit": Group("unit", ("tests/unit",), "Fast unit tests")},
        default_groups=("unit",),
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tests", "tests"),
        ("tests-3.12", "tests"),
        ("tests-parallel", "tests-parallel"),
        ("tests-parallel-3.13t", "tests-parallel"),
        ("ci-pypy3.10", "ci"),
        ("ci(python='3.12')", "ci"),
        ("combine", "combine"),
        ("lint", "lint"),
    ],
)
def test_session_kind_strips_nox_python_suffix(name: str, kind: str) -> None:
    assert session_kind(name) == kind


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PYTEST_WORKERS": "0"}, "Invalid worker count '0' from the environment variable"),
        ({"NOXLIB_SHARD": "3/2"}, "Invalid shard '3/2' from the environment variable"),
        ({"NOXLIB_ENGINE": "many"}, "Invalid engine 'many' from the environment variable"),
    ],
)
def test_environment_is_checked_for_any_session(
    config: Config, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(UsageError, match=expected):
        check_environment(env, config)
    with pytest.raises(UsageError, match=expected):
        check_request(config, ["lint"], [], env)


def test_test_sessions_plan_their_arguments(config: Config) -> None:
    check_request(config, ["tests", "ci-3.12"], ["unit", "-k", "x"], {})
    with pytest.raises(UsageError, match=r"'unti' .after --. is neither a test group"):
        check_request(config, ["tests-3.12"], ["unti"], {})
    with pytest.raises(UsageError, match=r"--affected .after --. asks session ci"):
        check_request(config, ["tests", "ci"], ["--affected"], {})


def test_arguments_of_other_sessions_are_theirs(config: Config) -> None:
    # A noxfile's own session, alone or beside noxlib's, reads its own arguments.
    check_request(config, ["lint"], ["--fix"], {})
    check_request(config, ["tests", "lint"], ["--fix"], {})
    check_request(config, None, ["--fix"], {})


def test_combine_folders_must_be_reports_folders(config: Config, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope .given to combine. does not exist"):
        check_request(config, ["combine"], [str(tmp_path / "nope")], {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"holds no run\.json"):
        check_request(config, ["combine"], [str(tmp_path / "empty")], {})
