"""The timing report: what it says and how it survives torn result files."""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

from noxlib.pipeline import PhaseTiming
from noxlib.reports import (
    RunSummary,
    TestResult,
    append_line,
    render_markdown,
    report_results,
    to_json_line,
    write_reports,
)
from noxlib.runinfo import PartRow


def summary(results: tuple[TestResult, ...]) -> RunSummary:
    return RunSummary(
        session="ci",
        run_id="r1",
        groups=("unit",),
        mode="parallel",
        workers=2,
        status="failed (pytest exit 1)",
        wall_seconds=12.5,
        phases=(PhaseTiming("install", 1.25, True), PhaseTiming("pytest", 10.0, False)),
        results=results,
        started_at="2026-11-22T00:00:00+0000",
    )


def many() -> tuple[TestResult, ...]:
    outcomes = ["passed"] * 9 + ["failed", "skipped", "error"]
    return tuple(TestResult(f"t.py::test_{i}", o, float(i)) for i, o in enumerate(outcomes))


def test_markdown_holds_everything_the_issue_asks_for() -> None:
    text = render_markdown(summary(many()))
    assert "# Test run: `ci` — failed (pytest exit 1)" in text
    assert "Groups: unit" in text
    assert "Mode: parallel, 2 worker(s)" in text
    assert "9 passed, 1 failed, 1 error, 1 skipped" in text
    assert "Wall time: 12.50 s" in text
    assert "| install | 1.25 | ok |" in text
    assert "| pytest | 10.00 | raised |" in text
    rows = [line for line in text.splitlines() if "`t.py::" in line]
    assert len(rows) == 10  # only the ten slowest
    assert rows[0].startswith("| 11.000 | error |")
    assert "test_0`" not in text
    assert "test_1`" not in text


def test_small_runs_list_every_test() -> None:
    listed = render_markdown(replace(summary(many()), list_all_up_to=12))
    assert "## All 12 tests by time" in listed
    assert len([line for line in listed.splitlines() if "`t.py::" in line]) == 12
    capped = render_markdown(replace(summary(many()), list_all_up_to=11))
    assert "## Slowest 10 tests" in capped


def test_results_skip_malformed_lines() -> None:
    good = {"nodeid": "a::b", "outcome": "passed", "duration": 0.5, "worker": "gw0"}
    bad = [{}, {"nodeid": "x", "outcome": "passed", "duration": "slow"}]
    assert report_results([good, *bad]) == [TestResult("a::b", "passed", 0.5, "gw0")]


def test_a_row_per_part_with_predicted_and_actual_seconds() -> None:
    parts = (
        PartRow("shard-1", "passed", 700, 5.5, 6.25),
        PartRow("shard-2", "crashed", 686, 5.4, 7.0, attempts=2),
    )
    text = render_markdown(replace(summary(many()), engine="shards", parts=parts))
    assert "Mode: parallel, engine shards, 2 worker(s)" in text
    assert "| shard-1 | passed | 700 | 5.50 | 6.25 |  | 1 |  |" in text
    assert "| shard-2 | crashed | 686 | 5.40 | 7.00 |  | 2 |  |" in text
    line = json.loads(to_json_line(replace(summary(many()), parts=parts)))
    assert line["parts"][1] == {
        "name": "shard-2",
        "status": "crashed",
        "tests": 686,
        "predicted": 5.4,
        "seconds": 7.0,
        "attempts": 2,
        "problem": "",
        "peak_rss": 0,
    }


def test_write_reports_replaces_md_and_appends_jsonl(tmp_path: Path) -> None:
    write_reports(tmp_path / "reports", summary(many()))
    write_reports(tmp_path / "reports", summary(()))
    text = (tmp_path / "reports" / "ci_timings.md").read_text()
    assert "No test finished" in text
    lines = (tmp_path / "reports" / "ci_timings.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["counts"]["failed"] == 1
    assert first["phases"][0] == {"name": "install", "seconds": 1.25, "ok": True}
    assert len(first["slowest"]) == 10


def test_the_history_line_holds_the_report_phase_and_the_nox_peak(tmp_path: Path) -> None:
    """What the report itself cost, and the memory of the process that wrote it: the figures
    that show noxlib's own work growing with a suite."""
    started = time.perf_counter()
    time.sleep(0.01)
    write_reports(tmp_path / "reports", summary(many()), started)
    line = json.loads((tmp_path / "reports" / "ci_timings.jsonl").read_text())
    names = [p["name"] for p in line["phases"]]
    assert names == ["install", "pytest", "report"]
    assert line["phases"][-1]["seconds"] >= 0.01
    assert line["nox_peak_rss_bytes"] > 10 * 2**20  # a Python process holds more than this
    assert "| report |" not in (tmp_path / "reports" / "ci_timings.md").read_text()


def _append_many(path: str, writer: int) -> None:
    for i in range(40):
        # Longer than the kernel's atomic pipe write (4 KiB): the lock keeps it whole.
        append_line(Path(path), json.dumps({"writer": writer, "i": i, "pad": "x" * 9000}))


def test_concurrent_appends_land_whole(tmp_path: Path) -> None:
    path = tmp_path / "ci_timings.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    lines = path.read_text().splitlines()
    assert len(lines) == 160
    assert sorted((d["writer"], d["i"]) for d in map(json.loads, lines)) == [
        (w, i) for w in range(4) for i in range(40)
    ]


def test_json_line_has_failures_and_coverage_when_known() -> None:
    from noxlib.causes import Cause
    from noxlib.triage import Failure

    failure = Failure("t.py::test_11", "failed", "not-rerun", Cause("K", "K", "m"), "over x")
    plain = json.loads(to_json_line(summary(many())))
    assert plain["failures"] == []
    assert "coverage_percent" not in plain  # unknown is left out, not 0
    data = json.loads(
        to_json_line(replace(summary(many()), failures=(failure,), coverage_percent=87.254))
    )
    assert data["failures"] == [
        {
            "nodeid": "t.py::test_11",
            "status": "failed",
            "triage": "not-rerun",
            "category": "K",
            "reason": "over x",
        }
    ]
    assert data["coverage_percent"] == 87.25


def test_extra_sections_come_last() -> None:
    text = render_markdown(replace(summary(many()), sections=("## Trend", "", "the end")))
    assert text.endswith("## Trend\n\nthe end\n")
