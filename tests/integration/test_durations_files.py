"""Where real nox runs keep their durations: a committed durations file is left alone (a clean
``git status``) unless ``--store-durations`` asks, and the figures still plan the next run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import git, run_nox

BASIC = Path(__file__).parents[1] / "projects" / "basic"
UNIT = "tests/unit/test_lib.py::test_in_a_subprocess"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = Path(shutil.copytree(BASIC, tmp_path / "basic"))
    # What a project ignores anyway: its venvs and its reports.
    (root / ".gitignore").write_text(".nox/\nreports/\n")
    git(root, "init", "-q")
    return root


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", "state")


def status(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=all")


def test_a_committed_durations_file_stays_clean_and_the_local_copy_learns(project: Path) -> None:
    (project / ".test_durations").write_text(json.dumps({UNIT: 9.5}))
    commit(project)
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert status(project) == ""
    assert json.loads((project / ".test_durations").read_text()) == {UNIT: 9.5}
    local = json.loads((project / ".noxlib" / "durations.json").read_text())
    assert local[UNIT] < 9.5  # measured now, beside the committed figure
    assert len(local) == 7, sorted(local)

    stored = run_nox(project, "-s", "tests", "--", "--store-durations")
    assert stored.returncode == 0, stored.stdout
    assert status(project) == " M .test_durations\n"
    shared = json.loads((project / ".test_durations").read_text())
    assert len(shared) == 7
    assert shared[UNIT] < 9.5


def test_a_project_without_one_gets_none_in_its_tree(project: Path) -> None:
    commit(project)
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert status(project) == ""
    assert not (project / ".test_durations").exists()
    assert len(json.loads((project / ".noxlib" / "durations.json").read_text())) == 7


def test_an_untracked_file_a_ci_cache_restored_is_updated(project: Path) -> None:
    commit(project)
    (project / ".test_durations").write_text("{}\n")  # as the CI example's cache step leaves it
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert len(json.loads((project / ".test_durations").read_text())) == 7
    assert not (project / ".noxlib" / "durations.json").exists()
