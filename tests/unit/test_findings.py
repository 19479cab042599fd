"""The report past one run's timings, and the reruns' command line: files in tmp dirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from noxlib.causes import Cause
from noxlib.findings import Settings, coverage_percent, write_report
from noxlib.pipeline import PhaseTiming
from noxlib.reports import RunSummary, TestResult
from noxlib.reruns import rerun_argv, rerun_env, rerun_paths
from noxlib.triage import FAILS_ALWAYS, PARALLEL_ONLY, Failure


def summary(failures: tuple[Failure, ...]) -> RunSummary:
    return RunSummary(
        session="ci",
        run_id="r21",
        groups=("unit",),
        mode="parallel",
        workers=2,
        status="failed",
        wall_seconds=12.5,
        phases=(PhaseTiming("pytest", 10.0, False), PhaseTiming("triage", 2.0, True)),
        results=(
            TestResult("t.py::ok", "passed", 0.1),
            *(TestResult(f.nodeid, f.status, 0.2) for f in failures),
        ),
        started_at="2026-11-22T10:00:00+0000",
        engine="shards",
        failures=failures,
    )


PAIR = Failure(
    "t.py::pair",
    "failed",
    PARALLEL_ONLY,
    Cause("AssertionError: held at t.py:3", "AssertionError", "held"),
)
REAL = Failure(
    "t.py::real", "timeout", FAILS_ALWAYS, Cause("timeout at t.py:9", "timeout", "Timeout")
)


def old_runs(count: int, flaky_at: set[int]) -> list[dict[str, object]]:
    runs = []
    for i in range(count):
        failures = [{"nodeid": "t.py::pair", "triage": "parallel-only"}] if i in flaky_at else []
        runs.append(
            {
                "session": "ci",
                "groups": ["unit"],
                "shard": None,
                "mode": "parallel",
                "status": "passed",
                "started_at": f"2026-11-{i + 1:02d}T09:00:00+0000",
                "wall_seconds": 10.0,
                "phases": [{"name": "pytest", "seconds": 8.0}],
                "failures": failures,
            }
        )
    return runs


def settings(reports: Path) -> Settings:
    return Settings(reports, "reports", flaky_threshold=5.0, triage_reruns=2, tolerate_flaky=False)


def test_the_report_holds_failures_digest_flakiness_and_ends_with_the_trend(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    lines = [json.dumps(run) for run in old_runs(19, flaky_at={3, 12})]
    (reports / "ci_timings.jsonl").write_text("\n".join(lines) + "\n")
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    path, written = write_report(
        summary((PAIR, REAL)), settings(reports), {"GITHUB_STEP_SUMMARY": str(step)}
    )
    text = path.read_text()
    assert text.index("## Failures") < text.index("## Root causes") < text.index("## Flakiness")
    assert text.index("## Flakiness") < text.index("## Trend")
    # The trend closes the report: this run's 10 s pytest phase is 25 % over the 8 s median.
    assert text.rstrip().splitlines()[-1].startswith("> Regression: the pytest phase took 10.00 s")
    # 3 of 20 parallel runs (two old ones and this one) had a parallel-only failure.
    assert (
        "Roll back: parallel-only failures in 3 of the last 20 parallel runs of ci (15 %)" in text
    )
    assert "PYTEST_WORKERS=1" in text
    assert "xychart-beta" in text
    last = json.loads((reports / "ci_timings.jsonl").read_text().splitlines()[-1])
    assert last["failures"] == [
        {
            "nodeid": "t.py::pair",
            "status": "failed",
            "triage": "parallel-only",
            "category": "AssertionError: held at t.py:3",
        },
        {
            "nodeid": "t.py::real",
            "status": "timeout",
            "triage": "fails-always",
            "category": "timeout at t.py:9",
        },
    ]
    assert last["counts"]["timeout"] == 1  # the counts keep their keys
    flaky = (reports / "flaky.md").read_text()
    assert "`t.py::pair`" in flaky
    assert "t.py::real" not in flaky
    summary_text = step.read_text()
    assert summary_text.startswith("earlier step\n")  # appended, never replaced
    assert "# Test run: `ci` — failed" in summary_text
    assert "## Root causes" in summary_text
    assert "## Trend" not in summary_text
    assert written.sections  # what was written is what is returned


def test_a_green_run_without_history_writes_no_failure_sections(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    path, _ = write_report(summary(()), settings(reports), {})
    text = path.read_text()
    assert "## Failures" not in text
    assert "## Root causes" not in text
    assert "The roll-back signal reads the last 20 parallel runs of ci, and needs 10: 1 run" in text
    assert "No such test in these runs." in (reports / "flaky.md").read_text()
    assert json.loads((reports / "ci_timings.jsonl").read_text())["failures"] == []


def test_coverage_percent_only_from_a_report_of_this_run(tmp_path: Path) -> None:
    xml = tmp_path / "coverage.xml"
    assert coverage_percent(xml, since=0.0) is None
    xml.write_text('<?xml version="1.0" ?><coverage line-rate="0.8734"></coverage>')
    assert coverage_percent(xml, since=0.0) == 87.34
    os.utime(xml, (1000.0, 1000.0))
    assert coverage_percent(xml, since=2000.0) is None  # left by an earlier run
    xml.write_text("not xml")
    assert coverage_percent(xml, since=0.0) is None


def test_reruns_collect_only_the_failed_files_when_they_exist(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    (tmp_path / "tests" / "test_b.py").write_text("")
    ids = ["tests/test_a.py::x", "tests/test_b.py::T::y[1]", "tests/test_a.py::z"]
    assert rerun_paths(ids, tmp_path, ["tests"]) == ["tests/test_a.py", "tests/test_b.py"]
    # Node ids relative to another rootdir: collect what the run collected, ids stay equal.
    assert rerun_paths(["test_a.py::x"], tmp_path, ["tests"]) == ["tests"]


def test_a_rerun_overrides_exitfirst_and_measures_no_coverage() -> None:
    argv = rerun_argv("/venv/bin/python", ["t.py"], ["-n", "0", "-x"])
    assert argv == ("/venv/bin/python", "-m", "pytest", "t.py", "-n", "0", "-x", "--maxfail=0")
    env = rerun_env({"COVERAGE_RCFILE": "/r/rc", "COVERAGE_PROCESS_START": "x", "KEEP": "1"})
    assert env == {"KEEP": "1"}
