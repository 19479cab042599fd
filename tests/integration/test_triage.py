"""Triage under real nox, on copies of tests/projects/triage: every way a test can fail, each
with its status, triage and root cause, in every report a user reads.

The project's .test_durations puts the two tests of the lock pair first in two different
shards, so with two workers they run at the same time and one of them fails.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import nox_env, run_nox

PROJECT = Path(__file__).parents[1] / "projects" / "triage"
PAIR = "tests/test_a_pair.py::test_fails_while_the_lock_is_held"
FIVE = [f"tests/test_same_cause.py::test_record[{n}]" for n in (3, 14, 159, 2653, 58979)]
FIVE_CAUSE = (
    "ValueError: record <n> has checksum <hex>, expected <hex> (cache <tmp>) "
    "at tests/test_same_cause.py:7"
)
# node id -> (status, triage, category); None where the category is checked apart.
EXPECTED: dict[str, tuple[str, str, str | None]] = {
    PAIR: (
        "failed",
        "parallel-only",
        "AssertionError: pair.lock is held by a test running beside this one "
        "at tests/test_a_pair.py:29",
    ),
    "tests/test_always.py::test_always_fails": (
        "failed",
        "fails-always",
        "AssertionError: arithmetic is broken at tests/test_always.py:2",
    ),
    "tests/test_flaky.py::test_fails_on_odd_attempts": (
        "failed",
        "flaky",
        "AssertionError: attempt <n> is odd at tests/test_flaky.py:11",
    ),
    "tests/test_timeouts.py::test_sleeps_past_the_timeout": (
        "timeout",
        "fails-always",
        "timeout at tests/test_timeouts.py:7",
    ),
    "tests/test_timeouts.py::test_sleeps_past_the_timeout_thread_method": (
        "timeout",
        "fails-always",
        "timeout at tests/test_timeouts.py:13",
    ),
    "tests/test_exits.py::test_exits": (
        "crashed",
        "fails-always",
        "worker or shard crashed: exited with code <n>",
    ),
    "tests/test_syntax_error.py": ("error", "not-rerun", None),
    **{nodeid: ("failed", "fails-always", FIVE_CAUSE) for nodeid in FIVE},
}
PASSED = [
    "tests/test_a_pair.py::test_holds_the_lock",
    "tests/test_passes.py::test_one",
    "tests/test_passes.py::test_two",
    "tests/test_passes.py::test_three",
]
# What pytest saw: 15 tests and one module that did not import.
COUNTS = {"passed": 4, "failed": 8, "error": 1, "timeout": 2, "crashed": 1}


class Ran:
    """One real nox run of the project: its output and the files it left."""

    def __init__(self, project: Path, output: str, returncode: int, step_summary: Path) -> None:
        self.project = project
        self.output = output
        self.returncode = returncode
        self.step_summary = step_summary

    @property
    def reports(self) -> Path:
        return self.project / "reports"

    def line(self) -> dict[str, object]:
        lines = (self.reports / "ci_timings.jsonl").read_text().splitlines()
        data: dict[str, object] = json.loads(lines[-1])
        return data

    def failures(self) -> dict[str, dict[str, str]]:
        found = self.line()["failures"]
        assert isinstance(found, list)
        return {f["nodeid"]: f for f in found}


def run_project(base: Path, name: str, *args: str, extra: str = "", **env: str) -> Ran:
    project = Path(shutil.copytree(PROJECT, base / name))
    if extra:
        pyproject = project / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace("[tool.noxlib]\n", f"[tool.noxlib]\n{extra}\n")
        )
    summary = base / f"{name}-step-summary.md"
    result = run_nox(project, *args, env=nox_env(GITHUB_STEP_SUMMARY=str(summary), **env))
    return Ran(project, result.stdout, result.returncode, summary)


@pytest.fixture(scope="module")
def triaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """The project run once by `tests-parallel` and once by `ci`, two shards each, both at
    once: each in a copy of its own, so they share nothing but the machine (their triage
    waits on timeouts, not on the CPU). The lock pair meets inside each run."""
    base = tmp_path_factory.mktemp("triage")
    with ThreadPoolExecutor(2) as pool:
        # Outside ci, pytest stops at a collection error unless told otherwise.
        parallel = pool.submit(
            run_project,
            base,
            "parallel",
            "-s",
            "tests-parallel",
            "--",
            "--continue-on-collection-errors",
            PYTEST_WORKERS="2",
        )
        ci = pool.submit(run_project, base, "ci", "-s", "ci", PYTEST_WORKERS="2")
        return {"tests-parallel": parallel.result(), "ci": ci.result()}


SESSIONS = ["tests-parallel", "ci"]


@pytest.mark.parametrize("session", SESSIONS)
def test_each_failure_gets_its_status_triage_and_category(
    triaged: dict[str, Ran], session: str
) -> None:
    ran = triaged[session]
    assert ran.returncode != 0, ran.output  # a triaged run still fails by default
    failures = ran.failures()
    assert set(failures) == set(EXPECTED), ran.output
    for nodeid, (status, triage, category) in EXPECTED.items():
        found = failures[nodeid]
        assert (found["status"], found["triage"]) == (status, triage), (nodeid, found)
        if category is not None:
            assert found["category"] == category, nodeid
    syntax = failures["tests/test_syntax_error.py"]
    assert syntax["category"].startswith("collection error: SyntaxError"), syntax
    assert syntax["reason"].startswith("collection error")


@pytest.mark.parametrize("session", SESSIONS)
def test_the_five_share_one_category_and_the_counts_add_up(
    triaged: dict[str, Ran], session: str
) -> None:
    ran = triaged[session]
    failures = ran.failures()
    assert {failures[nodeid]["category"] for nodeid in FIVE} == {FIVE_CAUSE}
    counts = ran.line()["counts"]
    assert isinstance(counts, dict)
    assert {k: v for k, v in counts.items() if v} == COUNTS
    results = [
        json.loads(line) for line in (ran.reports / "results.jsonl").read_text().splitlines()
    ]
    assert len(results) == sum(COUNTS.values()) == len({r["nodeid"] for r in results})
    assert sorted(r["nodeid"] for r in results if r["outcome"] == "passed") == sorted(PASSED)


@pytest.mark.parametrize("session", SESSIONS)
def test_the_reports_show_them(triaged: dict[str, Ran], session: str) -> None:
    ran = triaged[session]
    text = (ran.reports / "ci_timings.md").read_text()
    assert "| triage |" in text  # the phase, with its own timing
    assert (
        "Triage (up to 2 reruns each, alone, then in the company it failed in): "
        "9 fails-always, 1 parallel-only, 1 flaky, 1 not-rerun" in text
    )
    assert f"| `{PAIR}` | failed | parallel-only (alone: passed, passed" in text
    assert f"### 5 tests: {FIVE_CAUSE}" in text
    assert "shared files" in text  # the likely causes of a parallel-only failure
    assert text.index("## Root causes") < text.index("## Trend")
    assert "xychart-beta" in text
    flaky = (ran.reports / "flaky.md").read_text()
    assert f"`{PAIR}` | parallel-only" in flaky
    assert "`tests/test_flaky.py::test_fails_on_odd_attempts` | flaky" in flaky
    assert f"PYTEST_WORKERS=1 nox -s tests -- {PAIR}" in flaky
    assert f"PYTEST_WORKERS=2 NOXLIB_ENGINE=shards nox -s {session} -- suite" in flaky
    assert "test_always_fails" not in flaky
    summary = ran.step_summary.read_text()
    assert f"# Test run: `{session}`" in summary
    assert f"### 5 tests: {FIVE_CAUSE}" in summary
    assert "parallel-only" in summary
    assert f"noxlib: triage: {PAIR}: parallel-only" in ran.output


def test_the_reruns_leave_the_runs_durations_alone(triaged: dict[str, Ran]) -> None:
    # In the run the pair's checker failed at once; its serial reruns polled for 2.5 s each.
    durations = json.loads((triaged["ci"].project / ".test_durations").read_text())
    assert durations[PAIR] < 1.0


@pytest.mark.parametrize("engine", ["serial", "xdist"])
def test_counts_add_up_with_every_engine(tmp_path: Path, engine: str) -> None:
    # shards are above; triage is off here: the counts are the point.
    workers, option = ("1", []) if engine == "serial" else ("2", ["--engine", "xdist"])
    ran = run_project(
        tmp_path, engine, "-s", "ci", "--", *option, "--no-triage", PYTEST_WORKERS=workers
    )
    assert ran.returncode != 0
    counts = ran.line()["counts"]
    assert isinstance(counts, dict)
    assert sum(counts.values()) == sum(COUNTS.values()), counts
    assert (counts["timeout"], counts["crashed"], counts["error"]) == (2, 1, 1), counts
    failures = ran.failures()
    assert {f["triage"] for f in failures.values()} == {"not-rerun"}
    assert failures["tests/test_always.py::test_always_fails"]["reason"] == (
        "triage off: --no-triage was given"
    )
    assert "| triage |" in (ran.reports / "ci_timings.md").read_text()
    assert "rerunning" not in ran.output


def test_a_collection_error_that_stops_pytest_is_one_error(tmp_path: Path) -> None:
    # Outside ci without --continue-on-collection-errors, pytest runs nothing: one error.
    ran = run_project(tmp_path, "stops", "-s", "tests")
    assert ran.returncode != 0
    counts = ran.line()["counts"]
    assert isinstance(counts, dict)
    # The tests it collected never ran: the books say so (and why), rather than hiding them.
    assert {k: v for k, v in counts.items() if v} == {"error": 1, "not-run": 15}
    assert "pytest stopped at a collection error before any test ran" in ran.output
    assert ran.failures()["tests/test_syntax_error.py"]["triage"] == "not-rerun"
    assert "rerunning" not in ran.output


# --- history: the rollback signal, auto-rollback, tolerated failures ----------------------------


def history(total: int, flaky_at: set[int]) -> str:
    """A ci_timings.jsonl of ``total`` parallel runs, those in ``flaky_at`` with a parallel-only
    failure."""
    lines = []
    for i in range(total):
        failures = (
            [{"nodeid": PAIR, "status": "failed", "triage": "parallel-only", "category": "C"}]
            if i in flaky_at
            else []
        )
        run = {
            "session": "tests-parallel",
            "groups": ["suite"],
            "shard": None,
            "mode": "parallel",
            "engine": "shards",
            "workers": 2,
            "status": "failed" if failures else "passed",
            "started_at": f"2026-11-{i + 1:02d}T09:00:00+0000",
            "wall_seconds": 20.0,
            "phases": [{"name": "pytest", "seconds": 15.0}],
            "counts": {"passed": 3},
            "failures": failures,
        }
        lines.append(json.dumps(run))
    return "\n".join(lines) + "\n"


ONLY_FLAKY = {"tests/test_a_pair.py", "tests/test_flaky.py", "tests/test_passes.py"}


def flaky_project(base: Path, extra: str) -> Path:
    project = Path(shutil.copytree(PROJECT, base / "flaky"))
    for path in (project / "tests").glob("test_*.py"):
        if f"tests/{path.name}" not in ONLY_FLAKY:
            path.unlink()
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.noxlib]\n", f"[tool.noxlib]\n{extra}\n")
    )
    (project / "reports").mkdir()
    (project / "reports" / "ci_timings.jsonl").write_text(history(20, flaky_at={5, 12}))
    return project


def test_high_flakiness_says_roll_back_and_auto_rollback_runs_serially(tmp_path: Path) -> None:
    project = flaky_project(tmp_path, "tolerate-flaky = true")
    first = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    rollback = (
        "Roll back: parallel-only failures in 2 of the last 20 parallel runs of tests-parallel "
        "(10 %), above flaky-threshold 5 %"
    )
    assert f"noxlib: {rollback}" in first.stdout
    assert "PYTEST_WORKERS=1" in first.stdout
    assert "engine shards from tool.noxlib.engine; 2 workers" in first.stdout  # no opt-in yet
    # Its only failures were parallel-only and flaky, and tolerate-flaky is set: it passes.
    assert first.returncode == 0, first.stdout
    assert "passed with warnings" in first.stdout
    report = (project / "reports" / "ci_timings.md").read_text()
    assert "# Test run: `tests-parallel` — passed with warnings" in report
    assert "Passed with warnings" in report
    # The report counts this run too: the oldest run left the window, a flaky one came in.
    assert "Roll back: parallel-only failures in 3 of the last 20 parallel runs" in report
    triages = {
        f["triage"]
        for f in json.loads(
            (project / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1]
        )["failures"]
    }
    assert triages == {"parallel-only", "flaky"}

    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.noxlib]\n", "[tool.noxlib]\nauto-rollback = true\n")
    )
    second = run_nox(project, "-R", "-s", "tests-parallel")  # auto workers
    assert "serial, 1 worker: auto-rollback, parallel-only failures in" in second.stdout
    assert "above flaky-threshold 5 %; flaky in" in second.stdout
    assert "; PYTEST_WORKERS=N overrides" in second.stdout
    line = json.loads((project / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1])
    assert (line["mode"], line["workers"]) == ("serial", 1)
    # Serially the pair never meets; the flaky test still fails on its first attempt.
    assert {f["nodeid"]: f["triage"] for f in line["failures"]} == {
        "tests/test_flaky.py::test_fails_on_odd_attempts": "flaky"
    }
    assert second.returncode == 0, second.stdout


def test_a_green_run_does_no_triage_work(tmp_path: Path) -> None:
    ran = run_project(
        tmp_path, "green", "-s", "tests-parallel", "--", "tests/test_passes.py", PYTEST_WORKERS="2"
    )
    assert ran.returncode == 0, ran.output
    phases = {p["name"]: p["seconds"] for p in ran.line()["phases"]}  # type: ignore[union-attr]
    assert phases["triage"] < 0.05  # the phase is there, and returns at once
    assert "noxlib: triage" not in ran.output
    assert ran.failures() == {}
    assert "## Failures" not in (ran.reports / "ci_timings.md").read_text()
