"""The project's own packaging metadata, honoured by real nox runs: PEP 735 dependency groups
installed into the session venv, and ``python = [...]`` as nox's parametrized sessions."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import run_nox

BASIC = Path(__file__).parents[1] / "projects" / "basic"
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BASIC, tmp_path / "basic"))


def set_noxlib(project: Path, lines: str, before: str = "") -> None:
    """Add ``lines`` to [tool.noxlib] and ``before`` above it, in the project's pyproject."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace("[tool.noxlib]\n", f"{before}\n[tool.noxlib]\n{lines}\n")
    pyproject.write_text(text)


def test_a_python_list_gives_one_session_per_version_beside_the_plain_one(project: Path) -> None:
    set_noxlib(project, 'python = ["3.11", "3.12"]')
    result = run_nox(project, "-l")
    assert result.returncode == 0, result.stdout
    # The plain command runs nox's own Python: it never asks for an interpreter the machine
    # lacks. Each version is its own session, tagged per mode, and asked for by name or tag.
    assert "* tests ->" in result.stdout
    for line in (
        "- tests-3.11 [tests-matrix] ->",
        "- tests-3.12 [tests-matrix] ->",
        "- ci-3.12 [ci-matrix] ->",
        "- tests-parallel-3.11 [tests-parallel-matrix]",
    ):
        assert line in result.stdout
    # combine merges every version's shards with one interpreter; reap needs none.
    assert "- combine ->" in result.stdout
    assert "- reap ->" in result.stdout


def test_a_missing_version_is_skipped_in_one_line_and_never_downloaded(project: Path) -> None:
    set_noxlib(project, 'python = ["3.9", "3.11"]')
    result = run_nox(project, "-t", "tests-matrix", "--", "unit")
    assert result.returncode == 0, result.stdout
    # nox's summary line (its "skipped" line says "in a second" when the search takes one).
    assert "* tests-3.9: skipped (Python interpreter 3.9 not found)" in result.stdout
    assert result.stdout.count("Python interpreter 3.9 not found") == 2  # the skip and the summary
    assert "* tests-3.11: success" in result.stdout
    assert "download" not in result.stdout.lower()


def helper_package(tmp_path: Path) -> Path:
    package = tmp_path / "helperpkg"
    (package / "helperpkg").mkdir(parents=True)
    (package / "helperpkg" / "__init__.py").write_text("ANSWER = 42\n")
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "helperpkg"\nversion = "1.0"\n'
    )
    return package


def test_dependency_groups_are_installed_with_their_includes(project: Path, tmp_path: Path) -> None:
    groups = (
        "[dependency-groups]\n"
        'test = [{include-group = "helpers"}]\n'
        f'helpers = ["helperpkg @ {helper_package(tmp_path).as_uri()}"]\n'
    )
    set_noxlib(project, f'python = ["{HERE}"]\ndependency-groups = ["test"]', before=groups)
    (project / "tests" / "deps").mkdir()
    (project / "tests" / "deps" / "test_deps.py").write_text(
        "import helperpkg\n\n\ndef test_the_group_is_installed():\n"
        "    assert helperpkg.ANSWER == 42\n"
    )
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.noxlib.groups.deps]\npaths = ["tests/deps"]\n'
    )
    result = run_nox(project, "-s", f"tests-{HERE}", "--", "deps", "--coverage")
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout
    # The core line: sysmon measures branches (noxlib's default) only from Python 3.14.
    if sys.version_info >= (3, 14):
        assert "noxlib: coverage core sysmon: Python" in result.stdout
    else:
        assert "noxlib: coverage core default (ctrace): " in result.stdout
    # Each Python keeps its own history: the run is recorded under nox's own session name.
    history = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["session"] == f"tests-{HERE}"


def test_an_unknown_include_group_stops_before_any_venv(project: Path) -> None:
    groups = '[dependency-groups]\ntest = ["pytest", {include-group = "lnit"}]\nlint = []\n'
    set_noxlib(project, 'dependency-groups = ["test"]', before=groups)
    result = run_nox(project, "-s", "tests")
    assert result.returncode != 0
    assert "dependency-groups.test {include-group = \"lnit\"} names 'lnit'" in result.stdout
    assert "did you mean 'lint'?" in result.stdout
    assert str(project / "pyproject.toml") in result.stdout
    assert "Traceback" not in result.stdout
    assert not (project / ".nox").exists()
