"""What earlier runs say: the flakiness rate, the rollback signal and ``reports/flaky.md``.

Reads ``ci_timings.jsonl``, one JSON object per run, oldest first (reports.py writes it; the
CI workflows keep it in a cache between runs). Everything but `read_history` is pure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.triage import FAILS_ALWAYS, FLAKY, ORDER_DEPENDENT, PARALLEL_ONLY, TOLERABLE
from noxlib.words import plural

Run = Mapping[str, object]
# The flakiness rate looks at this many of the latest parallel runs.
WINDOW = 20
# Only the end of the file is read: its newest runs are all a report needs, and a file that
# grows for years must not slow every run's start.
TAIL_BYTES = 4 * 2**20
FLAKY_FILE = "flaky.md"
ROLLBACK_LEVER = "PYTEST_WORKERS=1"
# The roll-back signal says nothing from fewer parallel runs than this: one bad run of three
# is 33 %, and says little.
MIN_RUNS = 10


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


def failures_of(run: Run) -> list[Mapping[str, object]]:
    failures = run.get("failures")
    if not isinstance(failures, list):
        return []
    return [f for f in failures if isinstance(f, Mapping)]


def flaky_failures(run: Run) -> list[Mapping[str, object]]:
    """The run's failures that no rerun confirmed (flaky or parallel-only), and its
    order-dependent ones: the tests flaky.md lists."""
    shown = (*TOLERABLE, ORDER_DEPENDENT)
    return [f for f in failures_of(run) if f.get("triage") in shown]


def _has(run: Run, verdict: str) -> bool:
    return any(f.get("triage") == verdict for f in failures_of(run))


@dataclass(frozen=True)
class Flakiness:
    """Of the last ``runs`` parallel runs of ``session`` (at most WINDOW): how many had a
    parallel-only, a flaky and an order-dependent failure. Only parallel-only failures argue
    for running serially, and only from at least ``minimum`` runs; ``threshold`` is the
    `flaky-threshold` setting, in percent."""

    session: str
    runs: int
    parallel_only: int
    threshold: float
    flaky: int = 0
    order_dependent: int = 0
    minimum: int = MIN_RUNS

    @property
    def percent(self) -> float:
        return 100.0 * self.parallel_only / self.runs if self.runs else 0.0

    @property
    def enough(self) -> bool:
        return self.runs >= self.minimum

    @property
    def above(self) -> bool:
        return self.enough and self.percent > self.threshold

    def describe(self) -> str:
        """``parallel-only failures in 3 of the last 20 parallel runs of tests-parallel (15 %),
        above flaky-threshold 5 %; flaky in 1, order-dependent in 2``"""
        if not self.enough:
            return (
                f"the roll-back signal reads the last {WINDOW} parallel runs of "
                f"{self.session}, and needs {self.minimum}: {plural(self.runs, 'run')} so far"
            )
        side = "above" if self.above else "within"
        return (
            f"parallel-only failures in {self.parallel_only} of the last {self.runs} parallel "
            f"runs of {self.session} ({self.percent:.0f} %), {side} flaky-threshold "
            f"{self.threshold:g} %; flaky in {self.flaky}, order-dependent in "
            f"{self.order_dependent}"
        )


def flakiness(
    history: Sequence[Run], threshold: float, session: str, window: int = WINDOW
) -> Flakiness:
    """The roll-back signal of ``session``: its last ``window`` parallel runs in ``history``."""
    runs = [r for r in history if is_parallel(r) and r.get("session") == session][-window:]
    return Flakiness(
        session,
        len(runs),
        sum(_has(r, PARALLEL_ONLY) for r in runs),
        threshold,
        flaky=sum(_has(r, FLAKY) for r in runs),
        order_dependent=sum(_has(r, ORDER_DEPENDENT) for r in runs),
    )


def rollback_line(rate: Flakiness, reports_dir: str) -> str | None:
    """The one line (for the banner and the report) that tells to roll back, with the figure
    and the lever; None when the rate is within the threshold (or rests on too few runs)."""
    if not rate.above:
        return None
    return (
        f"Roll back: {rate.describe()}. Run with {ROLLBACK_LEVER} (no file edited), and fix "
        f"the tests that {reports_dir}/{FLAKY_FILE} lists with the commands that reproduce them."
    )


def order_dependent_line(rate: Flakiness, reports_dir: str) -> str | None:
    """Order-dependent failures do not argue for rolling back: they fail serially too."""
    if not rate.order_dependent:
        return None
    return (
        f"{plural(rate.order_dependent, 'run')} of the last {rate.runs} had an order-dependent "
        f"failure: {ROLLBACK_LEVER} does not fix those. Fix the polluters that "
        f"{reports_dir}/{FLAKY_FILE} names."
    )


# --- evidence across runs: a test that failed and passed at the same code and inputs ----------


def inputs_key(code: str, session: str, groups: Sequence[str], args: Sequence[str]) -> str:
    """What makes two runs alike enough that their outcomes of a test must agree: the code
    (commit and uncommitted Python files), the session, its groups and pytest arguments."""
    if not code:
        return ""
    text = json.dumps([code, session, list(groups), list(args)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def watched(history: Sequence[Run], window: int = WINDOW) -> set[str]:
    """The tests that failed in any of the last ``window`` runs: a run notes which of them
    passed, so that a later failure at the same code and inputs is known to be flaky."""
    return {str(f.get("nodeid")) for run in history[-window:] for f in failures_of(run)}


def passes_at(
    history: Sequence[Run], inputs: str, nodeids: Iterable[str], code: str = ""
) -> dict[str, str]:
    """Which of ``nodeids`` passed where a fails-always verdict says they cannot: in a
    recorded run with the same ``inputs``, or alone (a triage rerun) at the same ``code``."""
    found: dict[str, str] = {}
    wanted = set(nodeids)
    for run in history:
        when = run.get("started_at", "")
        passed = run.get("passed_watched")
        if inputs and run.get("inputs") == inputs and isinstance(passed, list):
            for nodeid in wanted.intersection(str(p) for p in passed):
                found[nodeid] = f"passed at the same code and inputs in the run of {when}"
        if not (code and run.get("code") == code):
            continue
        for failure in failures_of(run):
            alone = failure.get("alone")
            nodeid = str(failure.get("nodeid"))
            if nodeid in wanted and isinstance(alone, list) and "passed" in alone:
                found[nodeid] = f"passed alone at the same code in the run of {when}"
    return found


def _corrected(run: Run, failure: Mapping[str, object], history: Sequence[Run]) -> str:
    """The failure's verdict, corrected by the other runs at the same code and inputs: a
    fails-always test that passed there is flaky."""
    verdict = str(failure.get("triage"))
    if verdict != FAILS_ALWAYS:
        return verdict
    inputs, code = str(run.get("inputs", "")), str(run.get("code", ""))
    return FLAKY if passes_at(history, inputs, [str(failure.get("nodeid"))], code) else verdict


# --- reports/flaky.md --------------------------------------------------------------------------


@dataclass(frozen=True)
class FlakyTest:
    """A test that was flaky, parallel-only or order-dependent in some recorded runs: when
    first and last, how often, its latest verdict, category and polluter, and the latest such
    run (for its commands)."""

    nodeid: str
    first_seen: str
    last_seen: str
    times: int
    runs_since_first: int
    triage: str
    category: str
    last_run: Run
    polluter: tuple[str, ...] = ()


# flaky.md suggests a quarantine entry for a test flagged in this many runs.
QUARANTINE_AFTER = 3


def flaky_tests(history: Sequence[Run]) -> list[FlakyTest]:
    """Every test flagged flaky, parallel-only or order-dependent in ``history`` (a
    fails-always verdict that another run at the same code and inputs contradicts counts as
    flaky), most often flagged first."""
    found: dict[str, FlakyTest] = {}
    shown = (*TOLERABLE, ORDER_DEPENDENT)
    for index, run in enumerate(history):
        when = str(run.get("started_at", ""))
        for failure in failures_of(run):
            verdict = _corrected(run, failure, history)
            if verdict not in shown:
                continue
            nodeid = str(failure.get("nodeid"))
            known = found.get(nodeid)
            polluter = failure.get("polluter")
            found[nodeid] = FlakyTest(
                nodeid=nodeid,
                first_seen=known.first_seen if known else when,
                last_seen=when,
                times=(known.times if known else 0) + 1,
                runs_since_first=known.runs_since_first if known else len(history) - index,
                triage=verdict,
                category=str(failure.get("category", "")),
                last_run=run,
                polluter=tuple(str(p) for p in polluter) if isinstance(polluter, list) else (),
            )
    return sorted(found.values(), key=lambda t: (-t.times, t.nodeid))


def _command(words: Sequence[str]) -> str:
    return " ".join(w if w.startswith(("PYTEST_", "NOXLIB_")) else shlex.quote(w) for w in words)


def reproduce_serially(*nodeids: str) -> str:
    """The command that runs ``nodeids`` in one process, in this order (one test alone, or a
    polluter then its victim). PYTEST_WORKERS=1 keeps it serial where the variable is
    exported (CI often does)."""
    return _command([f"{ROLLBACK_LEVER}", "nox", "-s", "tests", "--", *nodeids])


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
    return _command(words)


def quarantine_entry(test: FlakyTest) -> str:
    """The `[tool.noxlib] quarantine` entry that flaky.md suggests for ``test``."""
    reason = (
        f"{test.triage} in {test.times} of {test.runs_since_first} runs since {test.first_seen}"
    )
    fields = f"id = {json.dumps(test.nodeid)}, reason = {json.dumps(reason)}"
    return f'{{ {fields}, expires = "YYYY-MM-DD" }},'


def _reproduce(test: FlakyTest) -> list[str]:
    lines = [f"### `{test.nodeid}`", "", "```bash"]
    if test.polluter:
        lines += [
            f"# it fails after {', '.join(test.polluter)}: run them, then it, in one process",
            reproduce_serially(*test.polluter, test.nodeid),
        ]
    lines += [
        "# alone, in one process (repeat it: a flaky test fails only sometimes)",
        reproduce_serially(test.nodeid),
    ]
    if is_parallel(test.last_run):
        lines += [
            "# in parallel, in the company it failed in",
            reproduce_in_parallel(test.nodeid, test.last_run),
        ]
    lines += ["```", ""]
    if test.times >= QUARANTINE_AFTER:
        lines += [
            "It keeps failing. To keep it running and reported without failing the run while "
            "it is fixed, add to `[tool.noxlib] quarantine` in pyproject.toml:",
            "",
            "```toml",
            quarantine_entry(test),
            "```",
            "",
        ]
    return lines


def render_flaky_md(history: Sequence[Run]) -> str:
    """``reports/flaky.md``: each known flaky, parallel-only or order-dependent test with its
    history and the commands that reproduce it."""
    tests = flaky_tests(history)
    lines = [
        "# Known flaky, parallel-only and order-dependent tests",
        "",
        f"From the last {len(history)} runs recorded in ci_timings.jsonl. **order-dependent**: "
        "it passes alone and fails after the polluter named here. **parallel-only**: it "
        "passed every rerun alone and in its company after failing beside other processes "
        "(an isolation bug). **flaky**: mixed outcomes under the same conditions, or it "
        "failed and passed at the same code and inputs in two runs.",
        "",
    ]
    if not tests:
        return "\n".join([*lines, "No such test in these runs."]) + "\n"
    lines += [
        "| test | triage | polluter | category | first seen | last seen | how often |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tests:
        often = f"{t.times} of {t.runs_since_first} runs since first seen"
        category = t.category.replace("|", "\\|")
        polluter = ", ".join(f"`{p}`" for p in t.polluter) or "-"
        lines.append(
            f"| `{t.nodeid}` | {t.triage} | {polluter} | {category} | {t.first_seen} "
            f"| {t.last_seen} | {often} |"
        )
    lines += ["", "## Reproduce", ""]
    for t in tests:
        lines += _reproduce(t)
    return "\n".join(lines)
