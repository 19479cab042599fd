"""The timing report of a run: ``ci_timings.md`` for people, ``ci_timings.jsonl`` for trends.

The pytest plugin appends one JSON line per finished test to the run's results file; this module
reads it back (skipping lines a killed run left half-written) and renders the report.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from noxlib.pipeline import PhaseTiming

OUTCOMES = ("passed", "failed", "skipped", "error", "xfailed", "xpassed")
SLOWEST = 10


@dataclass(frozen=True)
class TestResult:
    """One test's final outcome and its setup + call + teardown time."""

    __test__ = False  # a data class, not a pytest test class

    nodeid: str
    outcome: str
    duration: float
    worker: str = ""


@dataclass(frozen=True)
class RunSummary:
    """Everything the report says about one run."""

    session: str
    run_id: str
    groups: tuple[str, ...]
    mode: str
    workers: int
    status: str
    wall_seconds: float
    phases: tuple[PhaseTiming, ...]
    results: tuple[TestResult, ...]
    started_at: str = ""
    list_all_up_to: int = 0

    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.results)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    def slowest(self, n: int = SLOWEST) -> list[TestResult]:
        return sorted(self.results, key=lambda r: r.duration, reverse=True)[:n]


def read_results(path: Path) -> list[TestResult]:
    """Results the plugin wrote to ``path``; a missing file or a torn line is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    results = []
    for line in lines:
        try:
            data = json.loads(line)
            results.append(
                TestResult(
                    str(data["nodeid"]),
                    str(data["outcome"]),
                    float(data["duration"]),
                    str(data.get("worker", "")),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return results


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(summary: RunSummary) -> str:
    """The human report: what ran, how it ended, where the time went."""
    counts = summary.counts()
    lines = [
        f"# Test run: `{summary.session}` — {summary.status}",
        "",
        f"- Run id: `{summary.run_id}`, started {summary.started_at}",
        f"- Groups: {', '.join(summary.groups) or '(paths given on the command line)'}",
        f"- Mode: {summary.mode}, {summary.workers} worker(s)",
        "- Tests: "
        + ", ".join(
            f"{counts[k]} {k}"
            for k in OUTCOMES
            if counts[k] or k in ("passed", "failed", "skipped", "error")
        ),
        f"- Wall time: {summary.wall_seconds:.2f} s",
        "",
        "## Phases",
        "",
        *_table(
            ("phase", "seconds", "ended"),
            ((p.name, f"{p.seconds:.2f}", "ok" if p.ok else "raised") for p in summary.phases),
        ),
        "",
    ]
    everything = 0 < len(summary.results) <= summary.list_all_up_to
    slow = summary.slowest(len(summary.results) if everything else SLOWEST)
    lines += [
        f"## All {len(slow)} tests by time" if everything else f"## Slowest {SLOWEST} tests",
        "",
    ]
    if slow:
        lines += _table(
            ("seconds", "outcome", "test"),
            ((f"{r.duration:.3f}", r.outcome, f"`{r.nodeid}`") for r in slow),
        )
    else:
        lines.append("No test finished (collection failed, or the run was stopped early).")
    return "\n".join(lines) + "\n"


def to_json_line(summary: RunSummary) -> str:
    """One JSON object for ``ci_timings.jsonl``: the summary, with only the slowest tests."""
    data = {
        "run_id": summary.run_id,
        "started_at": summary.started_at,
        "session": summary.session,
        "groups": list(summary.groups),
        "mode": summary.mode,
        "workers": summary.workers,
        "status": summary.status,
        "wall_seconds": round(summary.wall_seconds, 3),
        "counts": summary.counts(),
        "phases": [asdict(p) for p in summary.phases],
        "slowest": [asdict(r) for r in summary.slowest()],
    }
    return json.dumps(data, sort_keys=True)


def write_reports(reports_dir: Path, summary: RunSummary) -> Path:
    """Write ``ci_timings.md`` (replaced), append to ``ci_timings.jsonl``; return the .md path."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    markdown = reports_dir / "ci_timings.md"
    markdown.write_text(render_markdown(summary), encoding="utf-8")
    with (reports_dir / "ci_timings.jsonl").open("a", encoding="utf-8") as trend:
        trend.write(to_json_line(summary) + "\n")
    return markdown


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
