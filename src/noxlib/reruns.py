"""Triage's reruns: each one fresh serial pytest process, over one failed test alone, or
over it after the tests that ran before it in its process (its company), in their order.

Run through the engine like any part (a rerun whose test kills its process is a crash, one
that hangs hits its time limit), in the run's folder, with the run's environment minus
coverage. The reruns write their own results files; nothing of theirs reaches the run's
counts, durations or coverage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib import polluter, triage
from noxlib.durations import file_of
from noxlib.engine import run_parts
from noxlib.idfile import write_ids
from noxlib.merge import read_results
from noxlib.outcomes import FAILING, RunStatus
from noxlib.partrun import Part
from noxlib.parts import SELECT_ENV
from noxlib.polluter import Budget
from noxlib.reaping.runs import PART_NAME_ENV

if TYPE_CHECKING:
    from noxlib.config import Config
    from noxlib.plan import Plan

Result = Mapping[str, object]

# Variables that would make a rerun measure coverage into the run's data.
COVERAGE_VARIABLES = ("COVERAGE_RCFILE", "COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")


def rerun_paths(nodeids: Sequence[str], root: Path, fallback: Sequence[str]) -> list[str]:
    """What a rerun collects: only the files of ``nodeids`` (collecting a whole suite again
    can cost seconds), when each exists under ``root``, where pytest runs. Otherwise node ids
    are relative to another rootdir, and the run's own ``fallback`` paths keep them equal."""
    files = list(dict.fromkeys(file_of(nodeid) for nodeid in nodeids))
    if files and all((root / path).is_file() for path in files):
        return files
    return list(fallback)


def rerun_argv(python: str, paths: Sequence[str], args: Sequence[str]) -> tuple[str, ...]:
    """``python -m pytest PATHS ARGS --maxfail=0``: the last word wins over an ``-x`` in the
    project's addopts or the user's arguments, so every chosen test is rerun."""
    return (python, "-m", "pytest", *paths, *args, "--maxfail=0")


def rerun_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in COVERAGE_VARIABLES}


# A rerun's time limit: its tests' per-test limit each, and time for the process to start and
# collect. The per-test limit is the run's own (ci-timeout, batch-timeout) or DEFAULT_TEST_SECONDS.
# The start: START_SECONDS when nothing was measured; else START_FLOOR_SECONDS plus three times
# the longest collection a part of the run measured (a rerun collects only the failed tests'
# files, so no longer), at most START_SECONDS. A hung test is rerun twice: each wait beyond what
# starting needs is paid twice. Too short a start costs only evidence (a rerun that reached no
# test gives none), never a verdict.
START_SECONDS = 60.0
START_FLOOR_SECONDS = 15.0
DEFAULT_TEST_SECONDS = 120.0


def start_allowance(collection_seconds: Iterable[float]) -> float:
    """What a rerun may take to start and collect, from the collections of the run's parts."""
    longest = max(collection_seconds, default=None)
    if longest is None:
        return START_SECONDS
    return min(START_SECONDS, START_FLOOR_SECONDS + 3 * longest)


class Rerunner:
    """Runs a list of tests in one fresh serial pytest process, in the list's order, and says
    each one's outcome. ``argv_for(ids)`` is the command, ``per_test`` the seconds each test
    may take, ``start`` the seconds to start and collect (``start_allowance``),
    ``test_timeout`` the seconds a test may run from its own start when nothing in the rerun
    ends it sooner (a batch's limit is its part's, not pytest-timeout's per test). A
    KeyboardInterrupt stops the running rerun and is raised again, as is a rerun that its
    pytest reports interrupted: Ctrl-C in a terminal (or a cancelled CI job) reaches the
    rerun's process while nox holds its own signals in the post phases."""

    def __init__(
        self,
        argv_for: Callable[[Sequence[str]], Sequence[str]],
        env: Mapping[str, str],
        folder: Path,
        per_test: float,
        start: float = START_SECONDS,
        *,
        test_timeout: float | None = None,
    ) -> None:
        self.argv_for = argv_for
        self.env = rerun_env(env)
        self.folder = folder
        self.per_test = per_test
        self.start = start
        self.test_timeout = test_timeout
        self.count = 0

    def limit(self, tests: int) -> float:
        return self.start + self.per_test * tests

    def run(self, nodeids: Sequence[str], limit: float | None = None) -> dict[str, str]:
        self.count += 1
        name = f"rerun-{self.count}"
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        select = write_ids(folder / "select.jsonl", nodeids)
        env = {**self.env, SELECT_ENV: str(select), PART_NAME_ENV: name}
        timeout = self.limit(len(nodeids)) if limit is None else limit
        part = Part(
            name,
            tuple(self.argv_for(nodeids)),
            env,
            folder / "part",
            timeout=timeout,
            test_timeout=self.test_timeout,
        )
        (outcome,) = run_parts([part], 1)
        if outcome.status is RunStatus.INTERRUPTED:
            raise KeyboardInterrupt(f"the rerun {name} was interrupted")
        results = read_results(part.files.results)
        return {str(r["nodeid"]): str(r.get("outcome")) for r in results}

    def outcome(self, nodeids: Sequence[str], limit: float | None = None) -> str:
        """The last test's outcome in a run of ``nodeids`` (not-run when it has none)."""
        return self.run(nodeids, limit).get(nodeids[-1], "not-run")


def gather(
    nodeid: str,
    before: Sequence[str],
    rounds: int,
    runner: Rerunner,
    budget: Budget,
) -> triage.Evidence:
    """The evidence on one failed test: ``rounds`` reruns alone; when it passes alone (or
    only skips), one rerun after the tests ``before`` it; when that fails again and it passed
    alone, the polluter search, and one more rerun of the polluter then the test to confirm
    it. The company reruns and the searches of a run share ``budget``."""
    alone = tuple(runner.outcome([nodeid]) for _ in range(rounds))
    passes = [o not in FAILING for o in alone if o not in triage.NO_EVIDENCE]
    if passes and not any(passes):
        return triage.Evidence(alone=alone)
    evidence = triage.Evidence(alone=alone, company_size=len(before))
    if not before:
        return evidence
    if budget.spent():
        return replace(evidence, stopped="its company was not rerun: triage-budget spent")
    limit = min(budget.left(), runner.limit(len(before) + 1))
    company = runner.outcome([*before, nodeid], limit)
    evidence = replace(evidence, company=(company,))
    if company not in FAILING or not any(passes):
        return evidence

    def fails(subset: Sequence[str]) -> bool | None:
        limit = min(budget.left(), runner.limit(len(subset) + 1))
        found = runner.outcome([*subset, nodeid], limit)
        return None if found in triage.NO_EVIDENCE else found in FAILING

    search = polluter.search(before, fails, budget)
    if not search.found or len(before) == 1:
        return replace(evidence, search=search)
    # The search's last step may rest on one outcome: the polluter and the test, once more,
    # confirm it (a flaky test can fail its way down any path).
    confirmed = fails(search.culprits)
    again = {True: "failed", False: "passed", None: "skipped"}[confirmed]
    return replace(evidence, company=(company, again), search=search)


def triage_failures(
    failed: Sequence[Result],
    results: Sequence[Result],
    config: Config,
    plan: Plan,
    *,
    runner: Rerunner,
    interrupted: bool,
    log: Callable[[str], object],
    reap: Callable[[], object],
    history: Mapping[str, str] | None = None,
) -> list[triage.Failure]:
    """Rerun the ``failed`` results' tests (each alone, then in its company from the run's
    ``results``) and judge each failure. ``reap`` ends what the reruns left (they run after
    the run's reap phase); ``interrupted`` says the run was, and nothing is rerun.
    ``history`` maps a test to the run at the same code and inputs where it passed."""
    off = triage.off_reason(
        enabled=config.triage,
        asked=plan.options.triage,
        session=plan.mode.name,
        sessions=config.triage_sessions,
        user_args=plan.user_args,
    )
    if interrupted:
        off = "the run was interrupted"
    chosen, skipped = triage.choose_reruns(failed, config.triage_max, off)
    evidence: dict[str, triage.Evidence] = {}
    if chosen:
        count = config.triage_reruns
        log(
            f"noxlib: triage: rerunning {len(chosen)} failed test(s), each {count} time(s) "
            "alone, then in the company it failed in, each time in one fresh pytest process "
            f"(limited to {runner.per_test:g} s a test and {runner.start:g} s to start)"
        )
        budget = Budget(config.triage_budget)
        try:
            for nodeid in chosen:
                before = triage.company_of(results, nodeid)
                evidence[nodeid] = gather(nodeid, before, count, runner, budget)
        except KeyboardInterrupt:
            log("noxlib: triage interrupted: the rest is reported not-rerun")
            for nodeid in chosen:
                if nodeid not in evidence:
                    skipped[nodeid] = "triage was interrupted"
        finally:
            reap()
    for nodeid, passed_in in (history or {}).items():
        if nodeid in evidence:
            evidence[nodeid] = replace(evidence[nodeid], history=passed_in)
    failures = triage.judge(failed, evidence, skipped, parallel=plan.parallel, root=config.root)
    for failure in failures:
        log(f"noxlib: triage: {failure.nodeid}: {failure.verdict_line()}")
    if any(f.triage == triage.ORDER_DEPENDENT for f in failures):
        log(f"noxlib: {triage.ORDER_DEPENDENT_ADVICE}")
    if any(f.triage == triage.PARALLEL_ONLY for f in failures):
        log(f"noxlib: {triage.PARALLEL_ONLY_ADVICE}")
    return failures
