"""Every failure triaged: fails-always, parallel-only, flaky, or not-rerun with the reason.

Pure functions over result records, the lines of a part's results.jsonl (see
``plugin.ResultsRecorder``): ``nodeid``, ``outcome`` and, for a failure, ``when``,
``longrepr``, ``sections``, ``crash`` {path, lineno, message} and ``frames`` [[path, lineno]].
Each failure's root cause comes from causes.py. The serial reruns themselves are run by the
nox side (sessions.py, with the engine); what they found comes in here as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.causes import Cause, cause_of, is_collection_error
from noxlib.outcomes import FAILING

Result = Mapping[str, object]

FAILS_ALWAYS = "fails-always"
PARALLEL_ONLY = "parallel-only"
FLAKY = "flaky"
NOT_RERUN = "not-rerun"
# What `tolerate-flaky` turns into warnings: failures that a serial rerun did not confirm.
TOLERABLE = (PARALLEL_ONLY, FLAKY)
PARALLEL_ONLY_ADVICE = (
    "A parallel-only failure is an isolation bug: the test shares something with the tests "
    "that ran beside it. Look for shared files (fixed paths), fixed ports, module globals and "
    "caches, and order dependence; see docs/testing.md#a-test-fails-in-parallel-but-not-serially."
)


@dataclass(frozen=True)
class Failure:
    """One failing test, triaged: its status, ``triage`` (fails-always, parallel-only, flaky
    or not-rerun with ``reason``), its cause, and the outcomes of its serial reruns."""

    nodeid: str
    status: str
    triage: str
    cause: Cause
    reason: str = ""
    reruns: tuple[str, ...] = ()

    def record(self) -> dict[str, str]:
        """The failure in the run's ``ci_timings.jsonl`` line."""
        data = {
            "nodeid": self.nodeid,
            "status": self.status,
            "triage": self.triage,
            "category": self.cause.key,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


# --- which failures are rerun, and what the reruns say ------------------------------------------


def failing(results: Iterable[Result]) -> list[Result]:
    """The results that failed, in run order."""
    return [r for r in results if r.get("outcome") in FAILING]


def off_reason(enabled: bool, no_triage_option: bool, user_args: Sequence[str]) -> str | None:
    """Why triage does not run for this run, or None when it does."""
    if no_triage_option:
        return "--no-triage was given"
    if not enabled:
        return "triage = false in [tool.noxlib]"
    if any(arg in ("--pdb", "--trace") for arg in user_args):
        return "--pdb and --trace need a terminal; reruns have none"
    return None


def choose_reruns(
    failures: Sequence[Result], limit: int, off: str | None
) -> tuple[list[str], dict[str, str]]:
    """The node ids to rerun (at most ``limit``, in run order) and, for every other failure,
    why it is not rerun. ``off`` is why triage is off, if it is."""
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    for result in failures:
        nodeid = str(result["nodeid"])
        if off:
            skipped[nodeid] = f"triage off: {off}"
        elif is_collection_error(result):
            skipped[nodeid] = "collection error: pytest could not import the file, so no test ran"
        elif len(chosen) >= limit:
            skipped[nodeid] = f"over triage-max ({limit} tests rerun)"
        else:
            chosen.append(nodeid)
    return chosen, skipped


def classify(reruns: Sequence[str], parallel: bool) -> str:
    """The triage of a failed test from its serial reruns' outcomes (in order).

    Every rerun failed: fails-always. Every rerun passed: parallel-only when the run was
    parallel (only the company of other tests made it fail), else flaky (the same serial
    conditions gave another outcome). Mixed reruns: flaky.
    """
    if not reruns:
        return NOT_RERUN
    failed = [outcome in FAILING for outcome in reruns]
    if all(failed):
        return FAILS_ALWAYS
    if not any(failed):
        return PARALLEL_ONLY if parallel else FLAKY
    return FLAKY


def judge(
    failures: Sequence[Result],
    rounds: Sequence[Mapping[str, str]],
    skipped: Mapping[str, str],
    *,
    parallel: bool,
    root: Path,
    interrupted: bool = False,
) -> list[Failure]:
    """Each failure triaged. ``rounds`` holds, per serial rerun, {node id: outcome} of the
    tests it ran; ``skipped`` why a test was not rerun (see `choose_reruns`). A chosen test
    missing from a round was not reached (``interrupted``) or not collected again."""
    judged = []
    for result in failures:
        nodeid = str(result["nodeid"])
        outcomes = tuple(r[nodeid] for r in rounds if nodeid in r)
        reason = skipped.get(nodeid, "")
        if not reason and len(outcomes) < len(rounds):
            reason = (
                "triage was interrupted"
                if interrupted
                else "a serial rerun did not run it (not collected again?)"
            )
        elif not reason and not rounds:
            reason = "triage was interrupted" if interrupted else "no rerun ran"
        triage = NOT_RERUN if reason else classify(outcomes, parallel)
        judged.append(
            Failure(
                nodeid=nodeid,
                status=str(result.get("outcome")),
                triage=triage,
                cause=cause_of(result, root),
                reason=reason,
                reruns=outcomes,
            )
        )
    return judged


def tolerated(failures: Sequence[Failure]) -> bool:
    """Whether every failure is one that a serial rerun did not confirm (parallel-only or
    flaky): what `tolerate-flaky` turns into warnings."""
    return bool(failures) and all(f.triage in TOLERABLE for f in failures)


def annotate(results: Iterable[Result], failures: Sequence[Failure]) -> list[dict[str, object]]:
    """``results`` with each failure's triage and category added, for results.jsonl (which
    `combine` reads back from every CI shard)."""
    by_id = {f.nodeid: f for f in failures}
    annotated = []
    for result in results:
        record = dict(result)
        found = by_id.get(str(result.get("nodeid")))
        if found is not None:
            record.update(triage=found.triage, category=found.cause.key)
            if found.reason:
                record["triage_reason"] = found.reason
        annotated.append(record)
    return annotated


def from_annotated(results: Iterable[Result], root: Path) -> list[Failure]:
    """The failures of results annotated by `annotate` (a CI shard's); a failure that carries
    no triage was not triaged there."""
    found = []
    for result in failing(results):
        triage = str(result.get("triage", NOT_RERUN))
        reason = str(result.get("triage_reason", ""))
        if "triage" not in result:
            reason = "not triaged on its CI shard"
        found.append(
            Failure(
                str(result["nodeid"]),
                str(result["outcome"]),
                triage,
                cause_of(result, root),
                reason,
            )
        )
    return found


# --- the report ----------------------------------------------------------------------------


def counts_line(failures: Sequence[Failure]) -> str:
    """``3 fails-always, 1 parallel-only, 2 flaky, 1 not-rerun``: only what occurred."""
    order = (FAILS_ALWAYS, PARALLEL_ONLY, FLAKY, NOT_RERUN)
    counted = {t: sum(f.triage == t for f in failures) for t in order}
    return ", ".join(f"{n} {t}" for t, n in counted.items() if n)


def render_failures(failures: Sequence[Failure], *, reruns: int, tolerate: bool) -> list[str]:
    """The report's "Failures" section: the verdict, a row per failing test, the advice."""
    if not failures:
        return []
    lines = ["## Failures", "", f"Triage ({reruns} serial reruns each): {counts_line(failures)}."]
    if tolerate and tolerated(failures):
        lines.append(
            "Passed with warnings: no failure was confirmed by a serial rerun, and "
            "tolerate-flaky = true lets such a run pass."
        )
    lines += ["", "| test | status | triage | root cause |", "|---|---|---|---|"]
    for f in failures:
        triage = f"{f.triage} ({f.reason})" if f.reason else f.triage
        if f.reruns:
            triage += f"; reruns: {', '.join(f.reruns)}"
        lines.append(f"| `{f.nodeid}` | {f.status} | {_cell(triage)} | {_cell(f.cause.key)} |")
    if any(f.triage == PARALLEL_ONLY for f in failures):
        lines += ["", f"> {PARALLEL_ONLY_ADVICE}"]
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
