"""``--affected`` never leaves out a test that a change can reach (issue 21's cases).

tests/projects/reach is made a git repository whose project is its ``proj/`` folder, and
``nox -s ci`` records the map once, with ``src/calc/double.py`` fixed but not committed. Each
test then breaks one test of the project by a change that reaches it without running a line of
the changed code in that test's own context, runs ``nox -R -s tests -- --affected``, and checks
that the broken test ran and the run failed, as plain pytest on the same tree would.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, nox_env, run_nox

REPOSITORY = Path(__file__).parents[1] / "projects" / "reach"
KEEP = (".nox", ".noxlib", "reports", ".test_affected", ".test_durations", ".pytest_cache")
DOUBLE = "src/calc/double.py"
DOUBLE_FIXED = "def double(x):\n    return x * 2\n"
EVERY_TEST = 20


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, committed with a bug in double.py, and the map of one ``ci`` run made
    with the fix uncommitted."""
    top = Path(shutil.copytree(REPOSITORY, tmp_path_factory.mktemp("reach") / "repo"))
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "the repository")
    project = top / "proj"
    (project / DOUBLE).write_text(DOUBLE_FIXED)
    # One process: a cached function or a session fixture runs once, for the first test that
    # needs it (in two shards each would run it, and the map would not show the loss).
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS="1"))
    assert result.returncode == 0, result.stdout
    assert f"wrote the --affected map of {EVERY_TEST} tests" in result.stdout, result.stdout
    return project


@pytest.fixture
def project(mapped: Path) -> Iterator[Path]:
    yield mapped
    top = mapped.parent
    git(top, "checkout", "-q", "--", ".")
    git(top, "clean", "-fdq", *(arg for keep in KEEP for arg in ("-e", keep)))
    (mapped / DOUBLE).write_text(DOUBLE_FIXED)


def ran(root: Path) -> set[str]:
    lines = (root / "reports" / "results.jsonl").read_text().splitlines()
    return {json.loads(line)["nodeid"] for line in lines}


def failed(root: Path) -> set[str]:
    lines = (root / "reports" / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {r["nodeid"] for r in records if r["outcome"] != "passed"}


def affected_run(root: Path, *options: str) -> str:
    args = ("--", "--affected", *options, "--no-triage")
    result = run_nox(root, "-R", "-s", "tests", *args, env=nox_env())
    return f"exit {result.returncode}\n{result.stdout}"


def edit(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


def assert_caught(root: Path, out: str, broken: str) -> None:
    """The run failed, and because of the broken test: it was selected, ran and failed."""
    assert out.startswith("exit 1"), out
    assert broken in ran(root), out
    assert broken in failed(root), out


def test_a_a_module_level_constant_a_test_imports(project: Path) -> None:
    edit(project, "src/calc/limits.py", "LIMIT = 10", "LIMIT = 11")
    out = affected_run(project)
    assert_caught(project, out, "tests/test_limits.py::test_limit_is_ten")
    assert "src/calc/limits.py changed at module level (line 1)" in out


def test_b_the_body_of_a_cached_function(project: Path) -> None:
    edit(project, "src/calc/cached.py", '"two": 2', '"two": 3')
    out = affected_run(project)
    assert_caught(project, out, "tests/test_cached.py::test_table_has_two")


def test_c_code_run_by_a_session_scoped_fixture(project: Path) -> None:
    edit(project, "src/calc/setup_env.py", '"level": 3', '"level": 4')
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_env.py::test_level")
    # Every user of the fixture, and no other test: the map knows who shares it.
    assert ran(project) == {"tests/test_env.py::test_mode", "tests/test_env.py::test_level"}
    explained = (
        "noxlib: --explain: 2 tests ran make_env in src/calc/setup_env.py, which changed:\n"
        "noxlib:     tests/test_env.py::test_level\n"
        "noxlib:     tests/test_env.py::test_mode\n"
        f"noxlib: --explain: {EVERY_TEST - 2} tests left out: none ran a line of a changed function"
    )
    assert explained in out.replace("nox > ", "")


def test_d_a_new_module_found_by_pkgutil_in_a_measured_package(project: Path) -> None:
    (project / "src/calc/plugins/broken.py").write_text('def run():\n    return "broken"\n')
    out = affected_run(project)
    assert_caught(project, out, "tests/test_plugins.py::test_every_plugin_runs")
    # With a new module about, every file is collected: one may list modules as it loads.
    assert f"collected {EVERY_TEST} items / {EVERY_TEST - 1} deselected / 1 selected" in out, out


def test_e_a_file_of_the_repository_outside_the_project_folder(project: Path) -> None:
    edit(project.parent, "shared/sharedlib.py", '"hello"', '"bye"')
    out = affected_run(project)
    assert_caught(project, out, "tests/test_shared.py::test_greeting")
    assert "every test, because ../shared/sharedlib.py changed: it is outside the project" in out


def test_f_a_file_the_map_saw_uncommitted_is_reverted(project: Path) -> None:
    git(project, "checkout", "-q", "--", DOUBLE)  # back to the committed bug
    out = affected_run(project)
    assert_caught(project, out, "tests/test_double.py::test_double")


def test_a_handler_that_only_a_server_subprocess_runs(project: Path) -> None:
    edit(project, "src/calc/server.py", "self.send_response(200)", "self.send_response(500)")
    out = affected_run(project)
    assert_caught(project, out, "tests/test_server.py::test_server_replies_pong")


def test_a_data_file_brings_the_tests_that_opened_it(project: Path) -> None:
    with (project / "tests/data/words.txt").open("a") as words:
        words.write("gamma\n")
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_words.py::test_two_words")
    assert "--explain: 1 test opened tests/data/words.txt, which changed:" in out
    assert "--explain: 1 test started a process, and tests/data/words.txt changed" in out
    # Not every test: the one that opened it, and the one that started a process (what its
    # child opened is not seen).
    assert ran(project) == {
        "tests/test_words.py::test_two_words",
        "tests/test_server.py::test_server_replies_pong",
    }, out


def test_a_function_body_still_selects_only_its_tests(project: Path) -> None:
    # The policy leans the safe way, but a change inside a function run only by tests keeps
    # the selection to them.
    edit(project, "src/calc/limits.py", "return min(value, LIMIT)", "return min(LIMIT, value)")
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert ran(project) == {"tests/test_limits.py::test_clamp_keeps_small_values"}, out
    # Only the file of the selected test is collected: the map vouches for the others.
    assert "collected 2 items / 1 deselected / 1 selected" in out, out


def test_a_function_a_test_module_calls_at_import_time_brings_that_modules_tests(
    project: Path,
) -> None:
    # cases() ran while pytest collected tests/test_cases.py: its tests, and no other file's.
    edit(project, "src/calc/cases.py", "return [1, 2, 3]", "return [1, 2, 30]")
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_cases.py::test_case_is_small[30]")
    assert ran(project) == {
        "tests/test_cases.py::test_bound_is_five[five]",
        "tests/test_cases.py::test_case_is_small[1]",
        "tests/test_cases.py::test_case_is_small[2]",
        "tests/test_cases.py::test_case_is_small[30]",  # a new id: the map does not know it
    }, out
    assert "--explain: 4 tests ran cases in src/calc/cases.py, which changed:" in out


def test_a_class_that_built_a_parameter_brings_its_test_though_the_test_ran_none_of_it(
    project: Path,
) -> None:
    # Bound("5") is built while pytest collects tests/test_cases.py; test_bound_is_five only
    # reads an attribute, and its id ("five") does not change. A map that gave Bound's lines
    # to the tests whose own run touched them would select nothing here, and be green:
    # pytest-testmon 2.2.0 does exactly that on this case (docs/benchmarks.md).
    edit(project, "src/calc/cases.py", "self.limit = int(text)", "self.limit = int(text) + 1")
    out = affected_run(project)
    assert_caught(project, out, "tests/test_cases.py::test_bound_is_five[five]")
    assert {nodeid.split("::")[0] for nodeid in ran(project)} == {"tests/test_cases.py"}, out


def test_a_function_a_lazily_imported_modules_body_calls_brings_every_test(
    project: Path,
) -> None:
    # build() ran while test_first_import imported calc.lazy; test_table_has_a reads the
    # table it built and runs none of its lines. The import is no test's own: every test.
    edit(project, "src/calc/lazy.py", 'return {"a": 1}', 'return {"a": 2}')
    out = affected_run(project)
    assert_caught(project, out, "tests/test_lazy.py::test_table_has_a")
    assert len(ran(project)) == EVERY_TEST, out


def test_a_test_method_another_test_file_inherits_brings_that_files_tests(
    project: Path,
) -> None:
    # tests/test_inherit.py subclasses test_base's class: its test runs test_base's method,
    # and is no test of test_base.py. A changed test file brings the files that import it.
    edit(project, "tests/test_base.py", "len(word) < 3", "len(word) < 2")
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_inherit.py::TestLongerWords::test_words_are_short")
    assert {nodeid.split("::")[0] for nodeid in ran(project)} == {
        "tests/test_base.py",
        "tests/test_inherit.py",
    }, out
    assert (
        "--explain: 1 test are in tests/test_inherit.py, which imports tests/test_base.py, "
        "which changed:" in out
    ), out


def test_a_test_the_maps_run_skipped_runs_where_it_does_not_skip(tmp_path: Path) -> None:
    # The map's run skipped the test (the tool it needs was missing there, as on a CI image),
    # so the map holds none of the code it runs; here it does not skip, and a change to that
    # code breaks it. It runs, as everything the map knows nothing of.
    top = Path(shutil.copytree(REPOSITORY, tmp_path / "repo"))
    project = top / "proj"
    (project / "src/calc/halve.py").write_text("def halve(x):\n    return x // 2\n")
    (project / "tests/test_tool.py").write_text(
        "import os\n\nimport pytest\n\nfrom calc.halve import halve\n\n\n"
        '@pytest.mark.skipif(os.environ.get("REACH_NO_TOOL") == "1", reason="no tool here")\n'
        "def test_halve():\n    assert halve(4) == 2\n"
    )
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "the repository")
    (project / DOUBLE).write_text(DOUBLE_FIXED)
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS="1", REACH_NO_TOOL="1"))
    assert result.returncode == 0, result.stdout
    edit(project, "src/calc/halve.py", "x // 2", "x // 3")
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_tool.py::test_halve")


def test_files_git_ignores_that_tests_read_are_checked_by_their_text(tmp_path: Path) -> None:
    # A module written at install time and a data set a script fetches are ignored by git,
    # so no diff ever lists them: only their text can tell the map they changed. A file a
    # test writes is its output, and changes with every run: it must not run every test.
    top = Path(shutil.copytree(REPOSITORY, tmp_path / "repo"))
    project = top / "proj"
    files = {
        ".gitignore": "src/calc/generated.py\ntests/data/fetched.txt\ntests/data/out.txt\n",
        "src/calc/generated.py": "SIZE = 3\n",
        "tests/data/fetched.txt": "3\n",
        "tests/test_ignored.py": (
            "from pathlib import Path\n\nfrom calc.generated import SIZE\n\n"
            "DATA = Path(__file__).parent / 'data'\n\n\n"
            "def test_generated_size():\n    assert SIZE == 3\n\n\n"
            "def test_fetched_data():\n"
            "    assert (DATA / 'fetched.txt').read_text() == '3\\n'\n\n\n"
            "def test_writes_output():\n    (DATA / 'out.txt').write_text('a run')\n"
        ),
    }
    for path, text in files.items():
        (project / path).write_text(text)
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "the repository")
    (project / DOUBLE).write_text(DOUBLE_FIXED)
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS="1"))
    assert result.returncode == 0, result.stdout

    (project / "tests/data/out.txt").write_text("another run")
    out = affected_run(project)
    assert out.startswith("exit 0"), out
    assert "--affected: 0 of the map's" in out, out

    edit(project, "src/calc/generated.py", "SIZE = 3", "SIZE = 4")
    out = affected_run(project)
    assert_caught(project, out, "tests/test_ignored.py::test_generated_size")
    assert "src/calc/generated.py differs from the text the map was made with" in out, out

    edit(project, "src/calc/generated.py", "SIZE = 4", "SIZE = 3")
    (project / "tests/data/fetched.txt").write_text("4\n")
    out = affected_run(project)
    assert_caught(project, out, "tests/test_ignored.py::test_fetched_data")


def test_a_module_with_doctests_brings_the_tests_that_ran_it_too(tmp_path: Path) -> None:
    # Under --doctest-modules a source module is a test file too: its doctests run whole when
    # it changes, and so must every other test that ran the changed function.
    top = Path(shutil.copytree(REPOSITORY, tmp_path / "repo"))
    project = top / "proj"
    (project / "src/calc/halve.py").write_text(
        'def halve(x):\n    """\n    >>> halve(4)\n    2\n    """\n    return x // 2\n'
    )
    # The file collected first imports the module (and opens its source): the test that
    # calls it is brought by its lines alone.
    (project / "tests/test_a_imports_halve.py").write_text(
        "import calc.halve\n\n\ndef test_imported():\n    assert calc.halve\n"
    )
    (project / "tests/test_halve.py").write_text(
        "from calc.halve import halve\n\n\ndef test_halve_odd():\n    assert halve(5) == 2\n"
    )
    edit(project, "pyproject.toml", 'paths = ["tests"]', 'paths = ["tests", "src/calc/halve.py"]')
    edit(
        project,
        "pyproject.toml",
        "[tool.pytest.ini_options]\n",
        ('[tool.pytest.ini_options]\naddopts = "--doctest-modules"\n'),
    )
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "the repository")
    (project / DOUBLE).write_text(DOUBLE_FIXED)
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS="1"))
    assert result.returncode == 0, result.stdout
    assert "src/calc/halve.py::calc.halve.halve" in result.stdout + str(ran(project)), result.stdout
    edit(project, "src/calc/halve.py", "return x // 2", "return (x + 1) // 2")
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_halve.py::test_halve_odd")
    assert "ran halve in src/calc/halve.py, which changed:" in out, out


def test_a_function_only_an_unmeasured_process_ran_brings_the_tests_that_start_processes(
    tmp_path: Path,
) -> None:
    # The test imports the module but runs its function only in a child with a clean
    # environment, which coverage cannot follow: the map holds no line of the function.
    top = Path(shutil.copytree(REPOSITORY, tmp_path / "repo"))
    project = top / "proj"
    (project / "src/calc/clean.py").write_text("def answer():\n    return 42\n")
    (project / "tests/test_clean.py").write_text(
        "import subprocess\nimport sys\nfrom pathlib import Path\n\nimport calc.clean\n\n"
        "SRC = Path(__file__).parents[1] / 'src'\n"
        "CODE = 'from calc.clean import answer; print(answer())'\n\n\n"
        "def test_answer_in_a_clean_process():\n"
        "    assert calc.clean\n"
        "    done = subprocess.run(\n"
        "        [sys.executable, '-c', CODE], env={'PYTHONPATH': str(SRC)},\n"
        "        capture_output=True, text=True, check=True,\n"
        "    )\n"
        "    assert done.stdout.strip() == '42'\n"
    )
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "the repository")
    (project / DOUBLE).write_text(DOUBLE_FIXED)
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS="1"))
    assert result.returncode == 0, result.stdout
    edit(project, "src/calc/clean.py", "return 42", "return 41")
    out = affected_run(project, "--explain")
    assert_caught(project, out, "tests/test_clean.py::test_answer_in_a_clean_process")
    assert "answer in src/calc/clean.py, which changed, ran in no measured process" in out, out


# --- shadow mode: ci runs everything, and says what --affected would have missed ------------


@pytest.fixture
def kept_map(project: Path) -> Iterator[Path]:
    """The module's map, put back after a test whose ci run rewrites or spoils it."""
    saved = (project / ".test_affected").read_bytes()
    yield project
    (project / ".test_affected").write_bytes(saved)


def ci_run(root: Path) -> str:
    result = run_nox(root, "-R", "-s", "ci", "--", "--no-triage", env=nox_env(PYTEST_WORKERS="1"))
    return f"exit {result.returncode}\n{result.stdout}"


def last_history(root: Path) -> dict[str, object]:
    lines = (root / "reports" / "ci_timings.jsonl").read_text().splitlines()
    record: dict[str, object] = json.loads(lines[-1])
    return record


def test_shadow_mode_reports_a_failing_test_the_selection_would_have_missed(
    kept_map: Path,
) -> None:
    project = kept_map
    # A deliberately incomplete map: it knows limits.py but no test that ran clamp(), and no
    # test that starts a process (one could run a function no line of which is in the map).
    cmap = json.loads((project / ".test_affected").read_text())
    cmap["files"]["src/calc/limits.py"] = {"lines": [], "outside": []}
    cmap["spawners"] = []
    (project / ".test_affected").write_text(json.dumps(cmap))
    edit(project, "src/calc/limits.py", "return min(value, LIMIT)", "return max(value, LIMIT)")
    out = ci_run(project)
    assert out.startswith("exit 1"), out
    missed = "tests/test_limits.py::test_clamp_keeps_small_values"
    assert (
        f"shadow --affected (the map of {cmap['commit'][:7]}): MISSED 1 failing test that it "
        f"would have left out: {missed}. it would have run 0 of {EVERY_TEST} tests (0%)"
    ) in out
    report = (project / "reports" / "ci_timings.md").read_text()
    assert "## Shadow --affected" in report
    assert f"- `{missed}`" in report
    shadow = last_history(project)["shadow"]
    assert isinstance(shadow, dict)
    assert shadow["missed"] == [missed]
    assert (shadow["selected"], shadow["total"], shadow["share"]) == (0, EVERY_TEST, 0.0)


def test_shadow_mode_says_what_a_right_selection_would_have_saved(kept_map: Path) -> None:
    project = kept_map
    edit(project, "src/calc/limits.py", "return min(value, LIMIT)", "return max(value, LIMIT)")
    out = ci_run(project)
    assert out.startswith("exit 1"), out
    assert f"it would have run 1 of {EVERY_TEST} tests (5%), " in out
    assert "s fewer; no failing test left out" in out
    shadow = last_history(project)["shadow"]
    assert isinstance(shadow, dict)
    assert shadow["missed"] == []
    assert isinstance(shadow["saved_seconds"], float)
    assert shadow["saved_seconds"] > 0


# --- a CI matrix: each shard records its share, combine merges the maps ---------------------


def test_combine_merges_the_maps_of_a_ci_matrix(kept_map: Path, tmp_path: Path) -> None:
    project = kept_map
    folders = []
    for k in (1, 2):
        env = nox_env(NOXLIB_SHARD=f"{k}/2")
        result = run_nox(project, "-R", "-s", "ci", "--", "--no-triage", env=env)
        assert result.returncode == 0, result.stdout
        shard_map = project / "reports" / "affected-map.json"
        assert shard_map.is_file(), result.stdout  # beside its reports, not the project's map
        folders.append(Path(shutil.copytree(project / "reports", tmp_path / f"shard-{k}")))
        (project / "reports" / "affected-map.json").unlink()
    (project / ".test_affected").unlink()
    combined = run_nox(project, "-s", "combine", "--", *map(str, folders))
    assert combined.returncode == 0, combined.stdout
    assert f"merged the --affected maps of 2 shards: {EVERY_TEST} tests" in combined.stdout
    assert (project / ".test_affected").is_file()
    # The merged map selects as one made in a single run.
    edit(project, "src/calc/setup_env.py", '"level": 3', '"level": 4')
    out = affected_run(project)
    assert_caught(project, out, "tests/test_env.py::test_level")
    assert ran(project) == {"tests/test_env.py::test_mode", "tests/test_env.py::test_level"}
