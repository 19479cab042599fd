"""``--affected`` under real nox, from the map of a real ``ci`` run.

One copy of tests/projects/affected is made a git repository, and ``nox -s ci`` writes its map
once. Each test then changes the working tree, runs ``nox -R -s tests -- --affected`` (or
tests-parallel), reads back which tests ran from ``reports/results.jsonl``, and the fixture puts
the tree back as it was committed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, nox_env, run_nox

PROJECT = Path(__file__).parents[1] / "projects" / "affected"
EVERY_TEST = {
    "tests/test_area.py::test_rectangle[1-5-5]",
    "tests/test_area.py::test_rectangle[2-3-6]",
    "tests/test_area.py::test_square_area",
    "tests/test_arith.py::test_add",
    "tests/test_arith.py::test_mul",
    "tests/test_names.py::TestLabels::test_square",
    "tests/test_names.py::test_label",
    "tests/test_names.py::test_shout",
}
# What a run writes, kept between the tests (a git clean must not take the map or the venv).
KEEP = (".nox", ".noxlib", "reports", ".test_affected", ".test_durations", ".pytest_cache")


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project, committed, with the map of one ``nox -s ci`` run."""
    root = Path(shutil.copytree(PROJECT, tmp_path_factory.mktemp("affected") / "proj"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "the project")
    result = run_nox(root, "-s", "ci")
    assert result.returncode == 0, result.stdout
    assert "wrote the --affected map of 8 tests" in result.stdout, result.stdout
    return root


@pytest.fixture
def project(mapped: Path) -> Iterator[Path]:
    yield mapped
    git(mapped, "checkout", "-q", "--", ".")
    git(mapped, "clean", "-fdq", *(arg for keep in KEEP for arg in ("-e", keep)))


def ran(root: Path) -> list[str]:
    """The tests the last run ran, in the order they ended (serial runs: the run order)."""
    lines = (root / "reports" / "results.jsonl").read_text().splitlines()
    return [json.loads(line)["nodeid"] for line in lines]


def affected_run(root: Path, session: str = "tests", *args: str, **env: str) -> str:
    result = run_nox(root, "-R", "-s", session, "--", "--affected", *args, env=nox_env(**env))
    return f"exit {result.returncode}\n{result.stdout}"


def edit(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


def commit_of(root: Path) -> str:
    return git(root, "rev-parse", "--short=7", "HEAD").strip()


def test_changing_one_function_runs_only_the_tests_that_execute_it(project: Path) -> None:
    edit(project, "src/shapes/names.py", 'return name.upper() + "!"', 'return f"{name.upper()}!"')
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert (
        f"--affected: 1 of the map's 8 tests (1 changed file; map from {commit_of(project)})" in out
    )
    assert ran(project) == ["tests/test_names.py::test_shout"]


@pytest.mark.parametrize("engine", ["shards", "xdist"])
def test_a_bug_in_that_function_is_caught_in_parallel_too(project: Path, engine: str) -> None:
    # mul is run by test_mul directly and by the area tests through rectangle and square.
    edit(project, "src/shapes/arith.py", "total = add(total, a)", "total = add(total, a + 1)")
    out = affected_run(project, "tests-parallel", "--engine", engine, PYTEST_WORKERS="2")
    assert out.startswith("exit 1"), out
    assert "--affected: 4 of the map's 8 tests (1 changed file;" in out
    expected = {
        "tests/test_arith.py::test_mul",
        "tests/test_area.py::test_rectangle[1-5-5]",
        "tests/test_area.py::test_rectangle[2-3-6]",
        "tests/test_area.py::test_square_area",
    }
    assert set(ran(project)) == expected
    assert "tests/test_arith.py::test_mul" in out  # reported as failed


def test_a_new_test_file_runs(project: Path) -> None:
    (project / "tests" / "test_more.py").write_text(
        "from shapes.names import label\n\n\ndef test_more():\n    assert label('x', 1)\n"
    )
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert "--affected: 0 of the map's 8 tests (1 changed file; 1 new test file run whole;" in out
    assert ran(project) == ["tests/test_more.py::test_more"]


def test_a_changed_test_file_runs_whole(project: Path) -> None:
    edit(project, "tests/test_arith.py", "== 12", "== 3 * 4")
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert set(ran(project)) == {"tests/test_arith.py::test_add", "tests/test_arith.py::test_mul"}


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("tests/conftest.py", "conftest.py changed (tests/conftest.py)"),
        ("pyproject.toml", "configuration changed (pyproject.toml)"),
    ],
)
def test_a_change_the_map_cannot_see_runs_everything_and_says_why(
    project: Path, path: str, why: str
) -> None:
    with (project / path).open("a") as out:
        out.write("\n# a comment is enough: the map cannot tell\n")
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert f"--affected: every test, because {why}" in out
    assert set(ran(project)) == EVERY_TEST


def test_without_a_map_everything_runs_and_says_why(project: Path) -> None:
    edit(project, "src/shapes/names.py", 'return name.upper() + "!"', 'return f"{name.upper()}!"')
    kept = project / ".test_affected.kept"
    (project / ".test_affected").rename(kept)
    try:
        out = affected_run(project)
    finally:
        kept.rename(project / ".test_affected")
    assert out.startswith("exit 0"), out
    assert "--affected: every test, because there is no map at" in out
    assert "(nox -s ci writes it; or fetch CI's) (no map)" in out
    assert set(ran(project)) == EVERY_TEST


def test_a_corrupt_map_stops_the_run_and_names_the_file(project: Path) -> None:
    original = (project / ".test_affected").read_bytes()
    (project / ".test_affected").write_text('{"format": "noxlib-affected-map", "version": 2}')
    try:
        out = affected_run(project)
    finally:
        (project / ".test_affected").write_bytes(original)
    assert out.startswith("exit 1"), out
    assert f"The map file {project / '.test_affected'} (tool.noxlib.affected.map-file)" in out
    assert "Delete it and run nox -s ci to write a new one" in out


def test_ci_refuses_affected(project: Path) -> None:
    out = affected_run(project, "ci")
    assert out.startswith("exit 2"), out  # refused when nox loads the noxfile: no venv work
    assert "ci never selects: it runs every test" in out


def test_last_runs_failures_go_first(project: Path) -> None:
    edit(project, "src/shapes/names.py", 'return name.upper() + "!"', 'return name + "!"')
    first = run_nox(project, "-R", "-s", "tests", "--", "--no-triage")
    assert first.returncode == 1, first.stdout
    assert ran(project)[0] != "tests/test_names.py::test_shout"  # in file order: late
    second = run_nox(project, "-R", "-s", "tests", "--", "--no-triage")
    assert "the 1 test(s) that failed in the last tests run go first" in second.stdout
    assert ran(project)[0] == "tests/test_names.py::test_shout"
    assert set(ran(project)) == EVERY_TEST


def test_failures_that_affected_leaves_out_are_not_announced_first(project: Path) -> None:
    edit(project, "src/shapes/names.py", 'return name.upper() + "!"', 'return name + "!"')
    first = run_nox(project, "-R", "-s", "tests", "--", "--no-triage")
    assert first.returncode == 1, first.stdout
    git(project, "checkout", "-q", "--", "src/shapes/names.py")
    edit(project, "src/shapes/arith.py", "total = add(total, a)", "total = add(a, total)")
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert "tests/test_names.py::test_shout" not in ran(project)
    assert "go first" not in out
