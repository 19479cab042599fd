"""A new user's first commands, with real nox: a project with no settings at all runs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_nox

NOXFILE = "import noxlib\n\nnoxlib.register_sessions()\n"
TESTS = "def test_a():\n    assert 1\n\n\ndef test_b():\n    assert 2\n"


def test_a_project_with_only_tests_runs_without_settings(tmp_path: Path) -> None:
    project = tmp_path / "bare"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_x.py").write_text(TESTS)
    (project / "elsewhere").mkdir()
    (project / "elsewhere" / "test_y.py").write_text(TESTS)  # pytest alone collects it too
    (project / "noxfile.py").write_text(NOXFILE)
    listed = run_nox(project, "-l")
    assert listed.returncode == 0, listed.stdout
    assert "* tests -> Run the tests serially" in listed.stdout
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert "groups: all;" in result.stdout
    assert "so it assumed: group all = what plain pytest collects here; nothing installed" in (
        result.stdout
    )
    assert "every collected test ran once (4 tests)" in result.stdout


def test_a_projects_own_testpaths_and_test_group_are_used(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_x.py").write_text(
        "import iniconfig\n\n\ndef test_the_group_is_installed():\n    assert iniconfig\n"
    )
    (project / "other").mkdir()
    (project / "other" / "test_y.py").write_text("def test_left_out():\n    assert 0\n")
    (project / "noxfile.py").write_text(NOXFILE)
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")  # not pyproject.toml
    (project / "pyproject.toml").write_text(
        '[dependency-groups]\ntest = ["iniconfig"]\n'  # no [project]: nothing to install
    )
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert "nothing installed (no project here); dependency group test" in result.stdout
    assert "every collected test ran once (1 test)" in result.stdout


def test_a_table_without_groups_runs_what_pytest_collects(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_x.py").write_text(TESTS)
    (project / "other").mkdir()
    (project / "other" / "test_y.py").write_text("def test_left_out():\n    assert 0\n")
    (project / "noxfile.py").write_text(NOXFILE)
    (project / "pyproject.toml").write_text(
        '[tool.noxlib]\ninstall = []\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert "groups: all;" in result.stdout
    assert "no groups in the [tool.noxlib] table in " in result.stdout
    assert "every collected test ran once (2 tests)" in result.stdout


def test_a_bad_group_table_prints_valid_toml_to_copy(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "noxfile.py").write_text(NOXFILE)
    (project / "pyproject.toml").write_text("[tool.noxlib]\ngroups = 3\n")
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 2, result.stdout
    assert 'define at least one group:\n[tool.noxlib.groups.unit]\npaths = ["tests"]\n' in (
        result.stdout
    )
