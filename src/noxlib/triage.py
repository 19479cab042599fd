"""Every failure triaged: fails-always, order-dependent, parallel-only, flaky, or not-rerun
with the reason.

Pure functions over result records, the lines of a part's results.jsonl (see
``plugin.ResultsRecorder``): ``nodeid``, ``outcome`` and, for a failure, ``when``,
``longrepr``, ``sections``, ``crash`` {path, lineno, message} and ``frames`` [[path, lineno]].
Each failure's root cause comes from causes.py. The reruns themselves are run by reruns.py
(with the engine); what they found comes in here as `Evidence`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.causes import Cause, cause_of, is_collection_error
from noxlib.outcomes import FAILING
from noxlib.polluter import Search

Result = Mapping[str, object]

FAILS_ALWAYS = "fails-always"
ORDER_DEPENDENT = "order-dependent"
PARALLEL_ONLY = "parallel-only"
FLAKY = "flaky"
NOT_RERUN = "not-rerun"
VERDICTS = (FAILS_ALWAYS, ORDER_DEPENDENT, PARALLEL_ONLY, FLAKY, NOT_RERUN)
# What `tolerate-flaky` turns into warnings: failures that no rerun confirmed. An
# order-dependent failure is confirmed: it fails every time after its polluter.
TOLERABLE = (PARALLEL_ONLY, FLAKY)
# A rerun that skipped, or did not reach the test, says nothing about it.
NO_EVIDENCE = frozenset({"skipped", "not-run"})
PARALLEL_ONLY_ADVICE = (
    "A parallel-only failure is an isolation bug: the test shares something with the tests "
    "that ran beside it at the same time. Look for shared files (fixed paths), fixed ports "
    "and other processes' state; see docs/testing.md#a-test-fails-in-parallel-but-not-serially."
)
ORDER_DEPENDENT_ADVICE = (
    "An order-dependent failure is not fixed by running serially (PYTEST_WORKERS=1): a test "
    "that ran before it leaves state behind (module globals, caches, environment variables, "
    "monkeypatching without undo). Fix the polluter it names, or make the victim set up what "
    "it needs; see docs/testing.md#order-dependent."
)


@dataclass(frozen=True)
class Evidence:
    """What triage's reruns of one failed test found: the outcomes of its reruns alone (one
    fresh process each), of its reruns in its company (the ``company_size`` tests that ran
    before it in its process, in their order), the polluter search, and ``history``: a run at
    the same code and inputs where it passed. ``stopped`` says why evidence is missing."""

    alone: tuple[str, ...] = ()
    company: tuple[str, ...] = ()
    company_size: int = 0
    search: Search | None = None
    history: str = ""
    stopped: str = ""

    def describe(self) -> str:
        """``alone: passed, passed; in its company of 12: failed, failed`` (what ran)."""
        parts = []
        if self.alone:
            parts.append(f"alone: {', '.join(self.alone)}")
        if self.company:
            parts.append(f"in its company of {self.company_size}: {', '.join(self.company)}")
        if self.history:
            parts.append(self.history)
        return "; ".join(parts)


def _said(outcomes: Sequence[str]) -> tuple[bool, ...]:
    """Each rerun that gave evidence: True when it failed."""
    return tuple(o in FAILING for o in outcomes if o not in NO_EVIDENCE)


def classify(evidence: Evidence, parallel: bool) -> tuple[str, str]:
    """The verdict on a failed test from its reruns, and the reason of a not-rerun one.

    - failed every rerun alone: fails-always (corrected to flaky when it passed at the same
      code and inputs in another run);
    - passed alone and failed every rerun in its company: order-dependent;
    - passed alone and in its company (or had none): parallel-only when the run was
      parallel (only the tests beside it at the same time explain it), else flaky;
    - mixed outcomes anywhere: flaky.
    A rerun that skipped is neither a pass nor a failure.
    """
    alone, company = _said(evidence.alone), _said(evidence.company)
    if alone and all(alone):
        return (FLAKY, "") if evidence.history else (FAILS_ALWAYS, "")
    if any(alone) or (any(company) and not all(company)):
        return FLAKY, ""  # mixed outcomes under the same conditions
    if company and all(company):
        return (ORDER_DEPENDENT if alone else FAILS_ALWAYS), ""
    if company:  # it passed in the company it failed in
        return (PARALLEL_ONLY if parallel and alone else FLAKY), ""
    return _without_company(evidence, passed_alone=bool(alone), parallel=parallel)


def _without_company(evidence: Evidence, *, passed_alone: bool, parallel: bool) -> tuple[str, str]:
    if not passed_alone:
        return NOT_RERUN, evidence.stopped or "it skipped or did not run in every rerun"
    if evidence.company_size:
        why = evidence.stopped or "its company was not rerun"
        return NOT_RERUN, f"it passed every rerun alone, and {why}"
    return (PARALLEL_ONLY if parallel else FLAKY), ""


def company_of(results: Sequence[Result], nodeid: str) -> list[str]:
    """The tests that ran before ``nodeid`` in its process (its part, or its xdist worker),
    in their order: the company it failed in."""
    index = next((i for i, r in enumerate(results) if r.get("nodeid") == nodeid), None)
    if index is None:
        return []
    worker = results[index].get("worker")
    before = [
        str(r["nodeid"])
        for r in results[:index]
        if r.get("worker") == worker and "::" in str(r["nodeid"]) and r.get("outcome") != "not-run"
    ]
    return list(dict.fromkeys(before))


@dataclass(frozen=True)
class Failure:
    """One failing test, triaged: its status, ``triage`` (one of VERDICTS, with ``reason``
    when not-rerun), its cause, and the evidence the verdict rests on."""

    nodeid: str
    status: str
    triage: str
    cause: Cause
    reason: str = ""
    evidence: Evidence = Evidence()
    quarantined: str = ""  # the quarantine entry that covers it: its failure fails no run

    @property
    def reruns(self) -> tuple[str, ...]:
        return self.evidence.alone

    @property
    def polluter(self) -> tuple[str, ...]:
        search = self.evidence.search
        return search.culprits if search and self.triage == ORDER_DEPENDENT else ()

    def verdict_line(self) -> str:
        """``order-dependent: fails after tests/t.py::test_a (found in 6 reruns, 4.1 s)``"""
        line = self._verdict()
        return f"{line}; {self.quarantined}" if self.quarantined else line

    def _verdict(self) -> str:
        search = self.evidence.search
        if self.triage == ORDER_DEPENDENT and search is not None:
            return f"{self.triage}: fails {search.describe()}"
        if self.triage == FAILS_ALWAYS:
            failed = sum(_said(self.evidence.alone)) or sum(_said(self.evidence.company))
            where = "alone" if any(_said(self.evidence.alone)) else "in its company"
            return f"{self.triage}: failed {failed} of {failed} reruns {where}"
        if self.reason:
            return f"{self.triage} ({self.reason})"
        described = self.evidence.describe()
        return f"{self.triage} ({described})" if described else self.triage

    def record(self) -> dict[str, object]:
        """The failure in the run's ``ci_timings.jsonl`` line."""
        data: dict[str, object] = {
            "nodeid": self.nodeid,
            "status": self.status,
            "triage": self.triage,
            "category": self.cause.key,
        }
        if self.reason:
            data["reason"] = self.reason
        if self.evidence.alone:
            data["alone"] = list(self.evidence.alone)
        if self.quarantined:
            data["quarantined"] = self.quarantined
        if self.polluter:
            data["polluter"] = list(self.polluter)
        return data


# --- which failures are rerun, and what the reruns say ------------------------------------------


def failing(results: Iterable[Result]) -> list[Result]:
    """The results that failed, in run order."""
    return [r for r in results if r.get("outcome") in FAILING]


def off_reason(
    *,
    enabled: bool,
    asked: bool | None,
    session: str,
    sessions: Sequence[str],
    user_args: Sequence[str],
) -> str | None:
    """Why triage does not run for this run, or None when it does. ``asked`` is --triage
    (True) or --no-triage (False); ``sessions`` the ones that triage unless told."""
    if asked is False:
        return "--no-triage was given"
    if not enabled:
        return "triage = false in [tool.noxlib]"
    if any(arg in ("--pdb", "--trace") for arg in user_args):
        return "--pdb and --trace need a terminal; reruns have none"
    if asked is None and session not in sessions:
        return (
            f"the {session} session does not rerun failures unless asked (triage-sessions); "
            f"nox -s {session} -- --triage says which are real, flaky or order-dependent"
        )
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


def judge(
    failures: Sequence[Result],
    evidence: Mapping[str, Evidence],
    skipped: Mapping[str, str],
    *,
    parallel: bool,
    root: Path,
) -> list[Failure]:
    """Each failure triaged from the ``evidence`` its reruns gave; ``skipped`` says why a
    test was not rerun (see `choose_reruns`)."""
    judged = []
    for result in failures:
        nodeid = str(result["nodeid"])
        found = evidence.get(nodeid, Evidence())
        if nodeid in skipped:
            triage, reason = NOT_RERUN, skipped[nodeid]
        else:
            triage, reason = classify(found, parallel)
        judged.append(
            Failure(
                nodeid=nodeid,
                status=str(result.get("outcome")),
                triage=triage,
                cause=cause_of(result, root),
                reason=reason,
                evidence=found,
            )
        )
    return judged


def tolerated(failures: Sequence[Failure], tolerate_flaky: bool = True) -> bool:
    """Whether no failure fails the run: each is quarantined, or (with `tolerate-flaky`) one
    that no rerun confirmed (parallel-only or flaky)."""
    return bool(failures) and all(
        f.quarantined or (tolerate_flaky and f.triage in TOLERABLE) for f in failures
    )


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
            if found.polluter:
                record["triage_polluter"] = list(found.polluter)
            if found.quarantined:
                record["quarantined"] = found.quarantined
            record["triage_verdict"] = found.verdict_line()
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
        polluter = result.get("triage_polluter")
        search = None
        if isinstance(polluter, list) and polluter:
            search = Search(tuple(str(p) for p in polluter), 0, 0.0)
        found.append(
            Failure(
                str(result["nodeid"]),
                str(result["outcome"]),
                triage,
                cause_of(result, root),
                reason,
                Evidence(search=search),
                str(result.get("quarantined", "")),
            )
        )
    return found


# --- the report ----------------------------------------------------------------------------


def counts_line(failures: Sequence[Failure]) -> str:
    """``3 fails-always, 1 parallel-only, 2 flaky, 1 not-rerun``: only what occurred."""
    counted = {t: sum(f.triage == t for f in failures) for t in VERDICTS}
    return ", ".join(f"{n} {t}" for t, n in counted.items() if n)


def render_failures(failures: Sequence[Failure], *, reruns: int, tolerate: bool) -> list[str]:
    """The report's "Failures" section: the verdict, a row per failing test, the advice."""
    if not failures:
        return []
    lines = [
        "## Failures",
        "",
        f"Triage (up to {reruns} reruns each, alone, then in the company it failed in): "
        f"{counts_line(failures)}.",
    ]
    if tolerated(failures, tolerate):
        lines.append(
            "Passed with warnings: every failure is quarantined, or (tolerate-flaky = true) "
            "was not confirmed by a rerun."
        )
    lines += ["", "| test | status | triage | root cause |", "|---|---|---|---|"]
    for f in failures:
        lines.append(
            f"| `{f.nodeid}` | {f.status} | {_cell(f.verdict_line())} | {_cell(f.cause.key)} |"
        )
    if any(f.triage == ORDER_DEPENDENT for f in failures):
        lines += ["", f"> {ORDER_DEPENDENT_ADVICE}"]
    if any(f.triage == PARALLEL_ONLY for f in failures):
        lines += ["", f"> {PARALLEL_ONLY_ADVICE}"]
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
