"""The timing report of a run: ``ci_timings.md`` for people, ``ci_timings.jsonl`` for trends.

The pytest plugin appends one JSON line per finished test to each part's results file; the merge
gathers them, and this module renders the report. Both files take concurrent runs: the
markdown is replaced at once, and each jsonl line is appended whole under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from noxlib.files import write_atomic
from noxlib.memory import human, own_peak_rss
from noxlib.merge import Result
from noxlib.outcomes import SHOWN
from noxlib.pipeline import PhaseTiming
from noxlib.runinfo import PartRow
from noxlib.shadow import ShadowVerdict
from noxlib.triage import Failure

OUTCOMES = tuple(outcome.value for outcome in SHOWN)
# Shown in the counts line even when zero: the ones a reader looks for first.
ALWAYS_SHOWN = ("passed", "failed", "skipped", "error")
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
    engine: str = ""
    shard: str | None = None
    parts: tuple[PartRow, ...] = ()
    notes: tuple[str, ...] = ()
    batches: tuple[Mapping[str, object], ...] = ()
    peak_rss: int = 0  # bytes the run's process tree held at most at once (0: not sampled)
    memory_budget: int = 0  # workers x memory-per-worker
    sampler_seconds: float = 0.0  # what sampling the memory cost the runner
    failures: tuple[Failure, ...] = ()  # each failing test, triaged (triage.py)
    sections: tuple[str, ...] = ()  # markdown lines after the rest: failures, digest, trend
    coverage_percent: float | None = None
    books: str = ""  # the books' sentence: "every collected test ran once (N tests)" or why not
    # The code and inputs of the run (history.inputs_key), and which of the tests that failed
    # in recent runs passed in this one: the evidence that a later failure is flaky.
    inputs: str = ""
    code: str = ""
    passed_watched: tuple[str, ...] = ()
    shadow: ShadowVerdict | None = None  # in ci with a map: what --affected would have missed
    nox_peak_rss: int = 0  # bytes the nox process itself held at most, up to its report

    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.results)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    def slowest(self, n: int = SLOWEST) -> list[TestResult]:
        return heapq.nlargest(n, self.results, key=lambda r: r.duration)


def report_results(results: Iterable[Result]) -> list[TestResult]:
    """The report's view of merged result lines (a malformed line is skipped)."""
    found = []
    for data in results:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            found.append(
                TestResult(
                    str(data["nodeid"]),
                    str(data["outcome"]),
                    float(str(data["duration"])),
                    str(data.get("worker", "")),
                )
            )
    return found


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_head(summary: RunSummary) -> list[str]:
    """The report's title and key facts (also what GitHub's step summary shows)."""
    counts = summary.counts()
    return [
        f"# Test run: `{summary.session}` — {summary.status}",
        "",
        f"- Run id: `{summary.run_id}`, started {summary.started_at}",
        f"- Groups: {', '.join(summary.groups) or '(paths given on the command line)'}",
        f"- Mode: {summary.mode}{_engine(summary)}, {summary.workers} worker(s)",
        "- Tests: "
        + ", ".join(f"{counts[k]} {k}" for k in OUTCOMES if counts[k] or k in ALWAYS_SHOWN),
        *([f"- Books: {summary.books}"] if summary.books else []),
        f"- Wall time: {summary.wall_seconds:.2f} s",
        *_memory_line(summary),
        "",
    ]


def render_markdown(summary: RunSummary) -> str:
    """The human report: what ran, how it ended, where the time went."""
    lines = [
        *render_head(summary),
        "## Phases",
        "",
        *_table(
            ("phase", "seconds", "ended"),
            ((p.name, f"{p.seconds:.2f}", "ok" if p.ok else "raised") for p in summary.phases),
        ),
        "",
        *[f"> {note}" for note in summary.notes],
        *([""] if summary.notes else []),
        *_parts_table(summary.parts),
        *_batches_table(summary.batches),
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
    if summary.sections:
        lines += ["", *summary.sections]
    return "\n".join(lines).rstrip("\n") + "\n"


def _engine(summary: RunSummary) -> str:
    shard = f", CI shard {summary.shard}" if summary.shard else ""
    return (f", engine {summary.engine}" if summary.engine else "") + shard


def _reasons(batch: Mapping[str, object]) -> list[str]:
    found = batch.get("dirty_reasons")
    return [str(r) for r in found] if isinstance(found, list) else []


def _memory_line(summary: RunSummary) -> list[str]:
    if not summary.peak_rss:
        return []
    budget = f" of a {human(summary.memory_budget)} budget" if summary.memory_budget else ""
    return [
        f"- Peak memory: {human(summary.peak_rss)}{budget} "
        f"({summary.workers} worker(s) x memory-per-worker)"
    ]


def _parts_table(parts: Sequence[PartRow]) -> list[str]:
    """A row per part: its status, tests, predicted and actual seconds, peak memory."""
    if len(parts) < 2:
        return []
    rows = (
        (
            p.name,
            p.status,
            p.tests,
            f"{p.predicted:.2f}",
            f"{p.seconds:.2f}",
            human(p.peak_rss) if p.peak_rss else "",
            p.attempts,
            p.problem or "",
        )
        for p in parts
    )
    header = (
        "part",
        "status",
        "tests",
        "predicted s",
        "actual s",
        "peak memory",
        "processes",
        "note",
    )
    return ["## Parts", "", *_table(header, rows), ""]


def _batches_table(batches: Sequence[Mapping[str, object]]) -> list[str]:
    """A row per batch: how it ended and what it left the next one."""
    if not batches:
        return []
    rows = (
        (
            f"`{b.get('name')}`",
            b.get("status"),
            f"{float(str(b.get('seconds', 0))):.2f}",
            "; ".join(filter(None, (str(b.get("problem") or ""), *_reasons(b)))) or "clean",
        )
        for b in batches
    )
    header = ("batch", "status", "seconds", "how it ended, what it left behind")
    return ["## Batches", "", *_table(header, rows), ""]


def to_json_line(summary: RunSummary) -> str:
    """One JSON object for ``ci_timings.jsonl``: the summary, with only the slowest tests."""
    data: dict[str, object] = {
        "run_id": summary.run_id,
        "started_at": summary.started_at,
        "session": summary.session,
        "groups": list(summary.groups),
        "mode": summary.mode,
        "engine": summary.engine,
        "shard": summary.shard,
        "workers": summary.workers,
        "parts": [asdict(p) for p in summary.parts],
        "batches": [dict(b) for b in summary.batches],
        "peak_rss_bytes": summary.peak_rss,
        "nox_peak_rss_bytes": summary.nox_peak_rss,
        "memory_budget_bytes": summary.memory_budget,
        "memory_samples_seconds": round(summary.sampler_seconds, 4),
        "status": summary.status,
        "wall_seconds": round(summary.wall_seconds, 3),
        "counts": summary.counts(),
        "phases": [asdict(p) for p in summary.phases],
        "slowest": [asdict(r) for r in summary.slowest()],
        "failures": [f.record() for f in summary.failures],
        "books": summary.books,
    }
    if summary.inputs:
        data["inputs"] = summary.inputs
        data["code"] = summary.code
        data["passed_watched"] = list(summary.passed_watched)
    if summary.coverage_percent is not None:
        data["coverage_percent"] = round(summary.coverage_percent, 2)
    if summary.shadow is not None:
        data["shadow"] = summary.shadow.record()
    return json.dumps(data, sort_keys=True)


def write_reports(reports_dir: Path, summary: RunSummary, started: float | None = None) -> Path:
    """Write ``ci_timings.md`` (replaced at once), append a line to ``ci_timings.jsonl``;
    return the .md path.

    The history line is written last, so it can hold what the report itself cost: the phase
    ``report`` from ``started`` (a `time.perf_counter` reading) until the .md is written, and
    the nox process's peak memory by then. Without them nobody could see these costs grow with
    a suite."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    markdown = reports_dir / "ci_timings.md"
    write_atomic(markdown, render_markdown(summary))
    if started is not None:
        report = PhaseTiming("report", time.perf_counter() - started, True)
        summary = replace(summary, phases=(*summary.phases, report))
    summary = replace(summary, nox_peak_rss=own_peak_rss())
    append_line(reports_dir / "ci_timings.jsonl", to_json_line(summary))
    return markdown


def append_line(path: Path, line: str) -> None:
    """Append ``line`` whole, even while other runs append to the same file: one write on an
    O_APPEND descriptor, under an exclusive lock (a line can be longer than the kernel's
    atomic write size)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def counts_line(summary: RunSummary) -> str:
    """``12 passed, 1 failed, 0 skipped, 0 error in 3.2 s`` (every status that occurred)."""
    counts = summary.counts()
    shown = ", ".join(f"{counts[k]} {k}" for k in OUTCOMES if counts[k] or k in ALWAYS_SHOWN)
    books = f"; {summary.books}" if summary.books else ""
    return f"{shown} in {summary.wall_seconds:.1f} s{books}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
