"""What earlier runs say: the flakiness rate, the rollback signal and ``reports/flaky.md``.

Reads ``ci_timings.jsonl``, one JSON object per run, oldest first (reports.py writes it; the
CI workflows keep it in a cache between runs). Everything but `read_history` is pure.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.triage import TOLERABLE

Run = Mapping[str, object]
# The flakiness rate looks at this many of the latest parallel runs.
WINDOW = 20
# Only the end of the file is read: its newest runs are all a report needs, and a file that
# grows for years must not slow every run's start.
TAIL_BYTES = 4 * 2**20
FLAKY_FILE = "flaky.md"
ROLLBACK_LEVER = "PYTEST_WORKERS=1"


def read_history(path: Path, tail_bytes: int = TAIL_BYTES) -> list[dict[str, object]]:
    """The runs recorded in ``path`` (its last ``tail_bytes``), oldest first; [] when there is
    no file. Lines that are not JSON objects (a torn write, a hand edit) are skipped."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - tail_bytes))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.splitlines()
    if size > tail_bytes and lines:
        lines = lines[1:]  # the first line was cut by the seek
    runs = []
    for raw in lines:
        with contextlib.suppress(ValueError):
            run = json.loads(raw)
            if isinstance(run, dict):
                runs.append(run)
    return runs


def is_parallel(run: Run) -> bool:
    """A run of several pytest processes at once (or of a CI matrix's shards, merged)."""
    mode = str(run.get("mode", "serial"))
    return mode != "serial"


def flaky_failures(run: Run) -> list[Mapping[str, object]]:
    """The run's failures that a serial rerun did not confirm (flaky or parallel-only)."""
    failures = run.get("failures")
    if not isinstance(failures, list):
        return []
    return [f for f in failures if isinstance(f, Mapping) and f.get("triage") in TOLERABLE]


@dataclass(frozen=True)
class Flakiness:
    """Of the last ``runs`` parallel runs (at most WINDOW), ``flaky`` had a flaky or
    parallel-only failure; ``threshold`` is the `flaky-threshold` setting, in percent."""

    runs: int
    flaky: int
    threshold: float

    @property
    def percent(self) -> float:
        return 100.0 * self.flaky / self.runs if self.runs else 0.0

    @property
    def above(self) -> bool:
        return self.runs > 0 and self.percent > self.threshold

    def describe(self) -> str:
        """``flakiness 10 %: 2 of the last 20 parallel runs had ..., above flaky-threshold 5 %``"""
        side = "above" if self.above else "within"
        return (
            f"flakiness {self.percent:.0f} %: {self.flaky} of the last {self.runs} parallel runs "
            f"had a flaky or parallel-only failure, {side} flaky-threshold {self.threshold:g} %"
        )


def flakiness(history: Sequence[Run], threshold: float, window: int = WINDOW) -> Flakiness:
    """The flakiness rate over the last ``window`` parallel runs of ``history``."""
    parallel = [run for run in history if is_parallel(run)][-window:]
    return Flakiness(len(parallel), sum(bool(flaky_failures(run)) for run in parallel), threshold)


def rollback_line(rate: Flakiness, reports_dir: str) -> str | None:
    """The one line (for the banner and the report) that tells to roll back, with the figure
    and the lever; None when the rate is within the threshold."""
    if not rate.above:
        return None
    return (
        f"Roll back: {rate.describe()}. Run with {ROLLBACK_LEVER} (no file edited), and fix "
        f"the tests that {reports_dir}/{FLAKY_FILE} lists with the commands that reproduce them."
    )


# --- reports/flaky.md --------------------------------------------------------------------------


@dataclass(frozen=True)
class FlakyTest:
    """A test that was flaky or parallel-only in some recorded runs: when first and last, how
    often, its latest triage and category, and the latest such run (for its commands)."""

    nodeid: str
    first_seen: str
    last_seen: str
    times: int
    runs_since_first: int
    triage: str
    category: str
    last_run: Run


def flaky_tests(history: Sequence[Run]) -> list[FlakyTest]:
    """Every test flagged flaky or parallel-only in ``history``, most often flagged first."""
    found: dict[str, FlakyTest] = {}
    for index, run in enumerate(history):
        when = str(run.get("started_at", ""))
        for failure in flaky_failures(run):
            nodeid = str(failure.get("nodeid"))
            known = found.get(nodeid)
            found[nodeid] = FlakyTest(
                nodeid=nodeid,
                first_seen=known.first_seen if known else when,
                last_seen=when,
                times=(known.times if known else 0) + 1,
                runs_since_first=known.runs_since_first if known else len(history) - index,
                triage=str(failure.get("triage")),
                category=str(failure.get("category", "")),
                last_run=run,
            )
    return sorted(found.values(), key=lambda t: (-t.times, t.nodeid))


def reproduce_serially(nodeid: str) -> str:
    """The command that runs one test alone; a flaky one may need it a few times."""
    return f"nox -s tests -- {shlex.quote(nodeid)}"


def reproduce_in_parallel(nodeid: str, run: Run) -> str:
    """The command that runs the test's company as ``run`` did: same session, groups (or
    the test's file), worker count, engine and CI shard."""
    words = [f"PYTEST_WORKERS={run.get('workers', 2)}"]
    engine = str(run.get("engine", ""))
    if engine in ("shards", "xdist"):
        words.append(f"NOXLIB_ENGINE={engine}")
    if run.get("shard"):
        words.append(f"NOXLIB_SHARD={run['shard']}")
    session = str(run.get("session", "tests-parallel"))
    groups = run.get("groups")
    targets = [str(g) for g in groups] if isinstance(groups, list) and groups else []
    words += ["nox", "-s", session, "--", *(targets or [nodeid.split("::", 1)[0]])]
    return " ".join(
        shlex.quote(w) if not w.startswith(("PYTEST_", "NOXLIB_")) else w for w in words
    )


def render_flaky_md(history: Sequence[Run]) -> str:
    """``reports/flaky.md``: each known flaky or parallel-only test with its history and the
    commands that reproduce it."""
    tests = flaky_tests(history)
    lines = [
        "# Known flaky and parallel-only tests",
        "",
        f"From the last {len(history)} runs recorded in ci_timings.jsonl. A test is here when a "
        "serial rerun did not confirm its failure: **parallel-only** (it passed every serial "
        "rerun after failing in a parallel run: an isolation bug) or **flaky** (mixed outcomes).",
        "",
    ]
    if not tests:
        return "\n".join([*lines, "No flaky or parallel-only test in these runs."]) + "\n"
    lines += [
        "| test | triage | category | first seen | last seen | how often |",
        "|---|---|---|---|---|---|",
    ]
    for t in tests:
        often = f"{t.times} of {t.runs_since_first} runs since first seen"
        category = t.category.replace("|", "\\|")
        lines.append(
            f"| `{t.nodeid}` | {t.triage} | {category} | {t.first_seen} | {t.last_seen} | {often} |"
        )
    lines += ["", "## Reproduce", ""]
    for t in tests:
        lines += [
            f"### `{t.nodeid}`",
            "",
            "```bash",
            "# serially, alone (repeat it: a flaky test fails only sometimes)",
            reproduce_serially(t.nodeid),
            "# in parallel, in the company it failed in",
            reproduce_in_parallel(t.nodeid, t.last_run),
            "```",
            "",
        ]
    return "\n".join(lines)
