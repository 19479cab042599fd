"""Real nox runs of the registered sessions on a copy of tests/projects/basic.

Each test runs the real nox, which makes a real venv (uv) and runs real pytest processes; the
fixture project's tests leave one file per test process in RECORD_DIR, so the number of
processes is counted, not assumed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import git, nox_env, run_nox

BASIC = Path(__file__).parents[1] / "projects" / "basic"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BASIC, tmp_path / "basic"))


def record_dir(tmp_path: Path) -> Path:
    path = tmp_path / "record"
    path.mkdir(exist_ok=True)
    return path


def processes(record: Path) -> list[str]:
    return sorted(p.name for p in record.iterdir())


def report(project: Path) -> str:
    return (project / "reports" / "ci_timings.md").read_text()


def test_tests_is_serial_in_one_process(project: Path, tmp_path: Path) -> None:
    record = record_dir(tmp_path)
    result = run_nox(project, "-s", "tests", env=nox_env(RECORD_DIR=str(record)))
    assert result.returncode == 0, result.stdout
    assert "serial, 1 worker: 'tests' is serial unless PYTEST_WORKERS is set" in result.stdout
    assert "-n 0" in result.stdout  # one process, with xdist's fixtures still there
    assert len(processes(record)) == 1
    text = report(project)
    assert "Mode: serial, engine serial, 1 worker(s)" in text
    assert "7 passed, 0 failed, 0 error, 0 skipped" in text  # the slow one is deselected
    assert "| pytest |" in text
    # Coverage belongs to ci and to whoever asks: the local loop does not pay for it.
    assert not (project / "reports" / "coverage.db").exists()
    assert "coverage run" not in result.stdout


def test_tests_parallel_runs_in_n_processes(project: Path, tmp_path: Path) -> None:
    record = record_dir(tmp_path)
    env = nox_env(RECORD_DIR=str(record), PYTEST_WORKERS="2")
    result = run_nox(project, "-s", "tests-parallel", env=env)
    assert result.returncode == 0, result.stdout
    # An explicit count is a request, not a hint: no recorded durations may argue for serial.
    banner = "engine shards (auto): 2 processes were asked for; 2 workers: exactly PYTEST_WORKERS=2"
    assert banner in result.stdout
    assert len(processes(record)) == 2
    text = report(project)
    assert "Mode: parallel, engine shards, 2 worker(s)" in text
    assert "| shard-1 | passed |" in text
    assert "| shard-2 | passed |" in text


def test_xdist_stays_a_selectable_engine(project: Path, tmp_path: Path) -> None:
    record = record_dir(tmp_path)
    env = nox_env(RECORD_DIR=str(record), PYTEST_WORKERS="2")
    result = run_nox(project, "-s", "tests-parallel", "--", "--engine", "xdist", env=env)
    assert result.returncode == 0, result.stdout
    assert "engine xdist (--dist load) from --engine; 2 workers" in result.stdout
    assert "-n 2 --dist load" in result.stdout
    assert len(processes(record)) == 2  # the two xdist workers ran the tests
    assert "7 passed" in report(project)


def test_rollback_with_pytest_workers_1(project: Path, tmp_path: Path) -> None:
    record = record_dir(tmp_path)
    env = nox_env(RECORD_DIR=str(record), PYTEST_WORKERS="1")
    result = run_nox(project, "-s", "ci", "--", "unit", env=env)
    assert result.returncode == 0, result.stdout
    assert "serial, 1 worker: PYTEST_WORKERS=1" in result.stdout
    assert len(processes(record)) == 1
    # CI mode writes the combined coverage as XML and HTML too.
    assert (project / "reports" / "coverage.xml").is_file()
    assert (project / "reports" / "htmlcov" / "index.html").is_file()


def test_ci_runs_only_the_named_group_with_ci_true_and_junit(project: Path, tmp_path: Path) -> None:
    record = record_dir(tmp_path)
    result = run_nox(project, "-s", "ci", "--", "other", env=nox_env(RECORD_DIR=str(record)))
    assert result.returncode == 0, result.stdout
    trend = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    results = [json.loads(line) for line in trend]
    assert results[-1]["counts"]["passed"] == 1
    assert [t["nodeid"] for t in results[-1]["slowest"]] == [
        "tests/other/test_other.py::test_other"
    ]
    [pid_file] = record.iterdir()
    assert pid_file.read_text().strip() == "true"  # CI=true reaches the tests also locally
    assert (project / "reports" / "junit.xml").is_file()


def test_ci_sees_every_failure_and_times_out_hung_tests(project: Path) -> None:
    # The project's addopts has -x, which `tests` obeys and `ci` must not. Triage is not the
    # subject here (tests/integration/test_triage.py): its reruns of the hung test took 20 s.
    env = nox_env(FAIL="1", HANG="1")
    result = run_nox(project, "-s", "ci", "--", "failing", "--no-triage", env=env)
    assert result.returncode != 0
    junit = (project / "reports" / "junit.xml").read_text()
    assert 'failures="3"' in junit or 'failures="2" errors="1"' in junit, junit
    assert "Timeout" in junit
    serial = run_nox(project, "-s", "tests", "--", "failing", env=env)
    assert "stopping after 1 failures" in serial.stdout


def test_posargs_reach_pytest_verbatim(project: Path) -> None:
    result = run_nox(project, "-s", "tests", "--", "unit", "-k", "parity", "-q")
    assert result.returncode == 0, result.stdout
    assert "2 passed, 6 deselected" in result.stdout


def test_each_group_keeps_its_own_markers_when_groups_run_together(project: Path) -> None:
    # unit has markers = "not slow" (its slow test raises); other has none. Without the plugin
    # marking tests by group, the combined -m expression would select nothing at all.
    result = run_nox(project, "-s", "tests", "--", "unit", "other")
    assert result.returncode == 0, result.stdout
    assert "(noxlib_group_unit and (not slow)) or noxlib_group_other" in result.stdout
    assert "8 passed, 1 deselected" in result.stdout


def test_failing_run_still_writes_reports_and_combined_coverage(project: Path) -> None:
    env = nox_env(FAIL="1")
    result = run_nox(project, "-s", "tests", "--", "failing", "--coverage", env=env)
    assert result.returncode != 0
    assert "Session tests failed" in result.stdout
    assert "# Test run: `tests` — failed" in report(project)
    assert (project / "reports" / "coverage.db").is_file()
    # Data files stay in the run's folder: nothing is left in the project or the reports.
    assert not list(project.glob(".coverage*"))
    assert not list((project / "reports").glob(".coverage*"))


def measured_lines(project: Path) -> dict[str, list[int]]:
    import coverage

    data = coverage.CoverageData(basename=str(project / "reports" / "coverage.db"))
    data.read()
    return {Path(f).name: sorted(data.lines(f) or []) for f in data.measured_files()}


def last_counts(project: Path) -> dict[str, int]:
    lines = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    counts: dict[str, int] = json.loads(lines[-1])["counts"]
    return counts


@pytest.mark.parametrize("engine", ["shards", "xdist"])
def test_parallel_counts_and_coverage_equal_serial(project: Path, engine: str) -> None:
    serial = run_nox(project, "-s", "tests", "--", "unit", "other", "--coverage")
    assert serial.returncode == 0, serial.stdout
    serial_lines, serial_counts = measured_lines(project), last_counts(project)
    env = nox_env(PYTEST_WORKERS="2")
    args = ("-s", "tests-parallel", "--", "unit", "other", "--engine", engine, "--coverage")
    parallel = run_nox(project, *args, env=env)
    assert parallel.returncode == 0, parallel.stdout
    assert last_counts(project) == serial_counts
    assert serial_counts["passed"] == 8
    assert measured_lines(project) == serial_lines
    # The subprocess-only function is measured: coverage reached the child process.
    source = (project / "src" / "mylib" / "__init__.py").read_text().splitlines()
    child_line = source.index('    return "odd-in-child" if n % 2 else "even-in-child"') + 1
    assert child_line in serial_lines["__init__.py"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("ci-timeout = 10", "ci-timout = 10"),
            "tool.noxlib.ci-timout = 10: unknown key; did you mean",
        ),
        (
            ("ci-timeout = 10", 'ci-timeout = "3s"'),
            "tool.noxlib.ci-timeout = '3s': expected seconds",
        ),
        (
            ('paths = ["tests/other"]', 'paths = ["tests/nope"]'),
            "groups.other.paths = 'tests/nope'",
        ),
    ],
)
def test_bad_config_stops_before_any_venv(
    project: Path, change: tuple[str, str], expected: str
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(*change))
    result = run_nox(project, "-s", "tests")
    assert result.returncode != 0
    assert expected in result.stdout
    assert "Traceback" not in result.stdout
    assert not (project / ".nox").exists()


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_bad_pytest_workers_stops_before_any_venv(project: Path, value: str) -> None:
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS=value))
    assert result.returncode != 0
    assert f"Invalid worker count '{value}' from the environment variable PYTEST_WORKERS" in (
        result.stdout
    )
    assert not (project / ".nox").exists()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ("-s", "tests", "--", "tcph"),
            {},
            "'tcph' (after --) is neither a test group nor an existing path",
        ),
        (
            ("-s", "tests-parallel", "--", "unit", "--engine", "nope"),
            {},
            "--engine",
        ),
        (
            ("-s", "ci"),
            {"NOXLIB_SHARD": "4/3"},
            "Invalid shard '4/3' from the environment variable NOXLIB_SHARD",
        ),
        (
            ("-s", "tests-parallel"),
            {"NOXLIB_ENGINE": "fast"},
            "Invalid engine 'fast' from the environment variable NOXLIB_ENGINE",
        ),
        (("-s", "ci", "--", "--affected"), {}, "--affected (after --) asks session ci"),
        (
            ("-s", "combine", "--", "no-such-folder"),
            {},
            "no-such-folder (given to combine) does not exist or is no folder",
        ),
        (
            ("-s", "tests"),
            {"NOXSESSION": "tests", "PYTEST_WORKERS": "two"},
            "Invalid worker count 'two' from the environment variable PYTEST_WORKERS",
        ),
    ],
)
def test_bad_input_stops_before_any_venv_with_exit_2(
    project: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    result = run_nox(project, *args, env=nox_env(**env))
    assert result.returncode == 2, result.stdout
    assert expected in result.stdout
    assert "Traceback" not in result.stdout
    assert ".." not in result.stdout.replace("...", "")  # one full stop, not nox's second one
    assert not (project / ".nox").exists()


def test_bad_markers_and_tiny_memory_stop_before_any_venv(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('markers = "not slow"', 'markers = "not slow and"')
    pyproject.write_text(
        text.replace("ci-timeout = 10", 'ci-timeout = 10\nmemory-per-worker = "1B"')
    )
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 2, result.stdout
    assert (
        "tool.noxlib.groups.unit.markers = 'not slow and': pytest cannot parse it as -m "
        "(at column 13: expected not OR left parenthesis OR identifier; got end of input)"
    ) in result.stdout
    assert "tool.noxlib.memory-per-worker = '1B': expected a size of at least 64MiB" in (
        result.stdout
    )
    assert not (project / ".nox").exists()


@pytest.mark.parametrize(
    ("umask", "file", "folder"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)]
)
def test_reports_durations_and_map_get_the_umasks_mode(
    project: Path, umask: int, file: int, folder: int
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.noxlib.affected]\nrecord = true\n")
    git(project, "init", "-q")  # the map is recorded against a commit
    git(project, "add", "-A")
    git(project, "commit", "-qm", "start")
    result = run_nox(project, "-s", "ci", "--", "unit", umask=umask)
    assert result.returncode == 0, result.stdout
    made = [project / ".noxlib", project / ".noxlib" / "durations.json", project / ".test_affected"]
    made.append(project / "reports")
    made += (project / "reports").rglob("*")
    assert (project / "reports" / "htmlcov" / "index.html") in made
    modes = {path: path.stat().st_mode & 0o777 for path in made}
    wrong = {
        str(path.relative_to(project)): oct(mode)
        for path, mode in modes.items()
        if mode != (folder if path.is_dir() else file)
    }
    assert not wrong, wrong
    # The reaping ledger names processes to end: it stays the run owner's alone.
    assert (project / ".noxlib" / "runs").stat().st_mode & 0o777 == 0o700


def test_unknown_group_word_lists_groups_before_installing(project: Path) -> None:
    result = run_nox(project, "-s", "ci", "--", "tcph")
    assert result.returncode != 0
    assert "'tcph' (after --) is neither a test group nor an existing path" in result.stdout
    assert "other    Another group" in result.stdout
    assert "pip install" not in result.stdout


def test_nox_list_shows_every_session_with_its_docstring(project: Path) -> None:
    result = run_nox(project, "-l")
    assert result.returncode == 0, result.stdout
    for line in (
        "* tests -> Run the tests serially",
        "- tests-parallel -> Run the tests in parallel: shards or xdist",
        "- combine -> Merge CI shards' reports folders",
        "- ci -> CI mode",
        "- reap -> End what dead runs",
    ):
        assert line in result.stdout


def start_sleeping_run(project: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """Start `nox -s tests -- failing` in its own process group; return it and the test's pid."""
    marker = tmp_path / "sleeping"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", "tests", "--", "failing", "--coverage"],
        cwd=project,
        env=nox_env(SLEEP_MARKER=str(marker)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, so a Ctrl-C to it reaches nox and pytest alone
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the sleeping test never started"
        time.sleep(0.1)
    time.sleep(0.5)  # the pid is written just before the sleep starts
    return proc, int(marker.read_text())


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-to-nox"])
def test_interrupted_run_still_writes_reports_and_coverage(
    project: Path, tmp_path: Path, how: str
) -> None:
    proc, test_pid = start_sleeping_run(project, tmp_path)
    try:
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            os.kill(proc.pid, signal.SIGTERM)  # a CI job cancelled: nox alone is signalled
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert pid_gone(test_pid), output
    assert (tmp_path / "sleeping.teardown").is_file(), "fixture teardown did not run"
    text = report(project)
    assert "— interrupted" in text, output
    assert "test_fails_first" in text  # what finished before the interrupt is reported
    assert (project / "reports" / "coverage.db").is_file(), output


def test_two_runs_in_one_checkout_keep_their_own_results(project: Path) -> None:
    # The venv first: two nox processes must not create the same venv at once.
    first = run_nox(project, "-s", "tests", "--", "other")
    assert first.returncode == 0, first.stdout
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "nox", "-R", "-s", "tests", "--", group, "--coverage"],
            cwd=project,
            env=nox_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for group in ("unit", "other")
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    lines = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()[1:]
    by_group = {tuple(json.loads(line)["groups"]): json.loads(line)["counts"] for line in lines}
    assert by_group[("unit",)]["passed"] == 7
    assert by_group[("other",)]["passed"] == 1
    # Each run combined its own data: the unit run measured mylib, whatever the other did.
    assert "src/mylib/__init__.py" in outputs[0]
    assert (project / "reports" / "coverage.db").is_file()
    assert not list(project.glob(".coverage*"))


GC_PYPROJECT = """
[tool.noxlib]
install = []
{setting}

[tool.noxlib.groups.unit]
paths = ["tests"]
"""

GC_TEST = """
import gc
from pathlib import Path

def test_note_frozen_objects():
    Path(__file__).parents[1].joinpath("frozen.txt").write_text(str(gc.get_freeze_count()))
"""


@pytest.mark.parametrize(("setting", "frozen"), [("", True), ("gc-freeze = false", False)])
def test_collected_tests_leave_the_garbage_collectors_rounds_unless_turned_off(
    make_project: object, setting: str, frozen: bool
) -> None:
    pyproject = GC_PYPROJECT.format(setting=setting)
    project = make_project(pyproject, {"tests/test_gc.py": GC_TEST})  # type: ignore[operator]
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    count = int((project / "frozen.txt").read_text())
    assert (count > 0) is frozen


def test_install_only_installs_and_leaves_no_report(project: Path) -> None:
    result = run_nox(project, "-s", "tests", "--install-only")
    assert result.returncode == 0, result.stdout
    assert "--install-only: installed; no test runs" in result.stdout
    assert (project / ".nox" / "tests" / "bin" / "pytest").exists()
    # No run happened: no history line, which would count as a run of no tests.
    assert not (project / "reports" / "ci_timings.jsonl").exists()


def test_a_shard_failure_prints_as_pytest_prints_it(project: Path) -> None:
    env = nox_env(PYTEST_WORKERS="2", FAIL="1")
    result = run_nox(project, "-s", "tests-parallel", "--", "failing", "--no-triage", env=env)
    assert result.returncode != 0
    block = result.stdout.split("= FAILURES =", 1)[1]
    # pytest's own first line keeps its indentation (its longreprtext strips it away).
    assert "\n    def test_fails_first():\n>       assert" in block
    assert "FAILED tests/failing/test_failing.py::test_fails_first - AssertionError" in block


def test_a_tests_run_leaves_no_earlier_ci_runs_junit_or_coverage(project: Path) -> None:
    assert run_nox(project, "-s", "ci", "--", "unit").returncode == 0
    reports = project / "reports"
    assert (reports / "junit.xml").is_file()
    assert (reports / "coverage.xml").is_file()
    result = run_nox(project, "-s", "tests", "--", "unit")
    assert result.returncode == 0, result.stdout
    left = {path.name for path in reports.iterdir()}
    assert not left & {"junit.xml", "coverage.xml", "coverage.db", "htmlcov"}, sorted(left)
    assert {"ci_timings.md", "ci_timings.jsonl", "results.jsonl", "run.json"} <= left


def test_the_serial_loop_reruns_failures_only_when_asked(project: Path) -> None:
    env = nox_env(FAIL="1")
    plain = run_nox(project, "-s", "tests", "--", "failing", "-k", "fails_first", env=env)
    assert plain.returncode != 0
    assert "triage: rerunning" not in plain.stdout
    assert "nox -s tests -- --triage says which are real, flaky or order-dependent" in plain.stdout
    asked = run_nox(
        project, "-R", "-s", "tests", "--", "failing", "--triage", "-k", "fails_first", env=env
    )
    assert "triage: rerunning 1 failed test(s)" in asked.stdout
    assert "fails-always: failed 2 of 2 reruns" in asked.stdout
