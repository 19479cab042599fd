"""One test run, out of any host: its phases as a table, as nox's workflow.py reads.

The run talks to its host (nox's session, or a fake one in tests) through the small `Host`
protocol: log and warn, install into the venv, the venv's bin folder and environment. Every
decision lives in a plain module (plan, launch, engine, books, merge, triage, reports); this
module orders them and keeps the run's state: its parts, its books and its status.

Longer than 400 lines, and left so: it is one behaviour, the order of a run's phases and the
state they share; each phase's decisions live in the modules it calls.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from noxlib import (
    affected,
    cover,
    coveragemap,
    measure,
    reaping,
    reports,
    runorder,
    shadow,
    triage,
)
from noxlib.batchplan import BatchPlan
from noxlib.books import Books, balance
from noxlib.config import Config
from noxlib.describe import describe_run
from noxlib.durations import DURATIONS_LOCK, write_durations
from noxlib.engine import run_parts
from noxlib.findings import Settings, write_report
from noxlib.gitdiff import GitError
from noxlib.host import TEST_TOOLS, Engine, Host, RunFailed
from noxlib.judging import Judging
from noxlib.launch import Launch, command_line, file_plan, make_parts, run_env
from noxlib.memory import Sampler
from noxlib.merge import (
    JUNIT_FILE,
    RESULTS_FILE,
    collected,
    part_source,
    update_run_durations,
    write_merged,
    write_results,
)
from noxlib.outcomes import RunStatus
from noxlib.partrun import Part, PartOutcome
from noxlib.pipeline import Pipeline
from noxlib.plan import Plan, measures_coverage, records_map
from noxlib.progress import Progress, failures_report, outcome_lines
from noxlib.reaping import Run, finish_run
from noxlib.runinfo import RunInfo, write_run_info

# Run statuses that tolerate-flaky may turn into "passed with warnings": tests failed, and
# triage found every failure flaky or parallel-only (a crash or a thread timeout included).
_TOLERABLE = (RunStatus.FAILED, RunStatus.CRASHED, RunStatus.TIMEOUT)


class TestRun:
    """The phases of one test run, each a method the pipeline times."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        host: Host,
        config: Config,
        plan: Plan,
        run: Run,
        durations: Mapping[str, float],
        *,
        order: runorder.TestOrder | None = None,
        self_install: Sequence[str] = (),
        engine: Engine = run_parts,
        shadow: affected.Selection | None = None,
    ) -> None:
        self.host, self.config, self.plan, self.run = host, config, plan, run
        self.engine = engine  # what runs the parts: engine.run_parts (a fake one in tests)
        self.shadow = shadow  # in ci: what --affected would have run, judged in report()
        self.durations = durations
        self.self_install = tuple(self_install)
        self.pipeline = Pipeline(log=host.log)
        self.rcfile: Path | None = None
        self.installed = False
        self.status = RunStatus.NOT_STARTED
        self.reason = ""  # why the status is not passed, in one clause
        self.warden: reaping.Warden | None = None
        self.started_at = reports.now_iso()
        self.started_wall = time.time()
        self.parts: list[Part] = []
        self.outcomes: list[PartOutcome] = []
        self.books: Books | None = None
        self.batch_plan = BatchPlan(plan, config, host.name)
        self.sampler = Sampler()
        self.failures: list[triage.Failure] = []
        self.tolerated = False  # every failure parallel-only or flaky, and tolerate-flaky set
        self.coverage: cover.Verdict | None = None
        # --affected's selection and last run's failures first; the map this run records.
        self.order = order or runorder.TestOrder()
        self.order_env: dict[str, str] = {}
        self.map_base: tuple[str, dict[str, str]] | None = None
        self.code = ""
        self.judging = Judging(self)  # the triage phase's reruns, quarantine and history

    @property
    def results(self) -> list[dict[str, object]]:
        return self.books.results if self.books else []

    def execute(self) -> None:
        """Run the phases; raise RunFailed unless the run passed (or passed with warnings)."""
        try:
            self.pipeline.execute(
                (
                    ("reap-stale", self.reap_stale),
                    ("warden", self.start_warden),
                    ("prepare", self.prepare),
                    ("install", self.install),
                    ("collect", self.collect_batches),
                    ("pytest", self.pytest),
                ),
                # Reap first: servers stopped with SIGTERM save their coverage data before the
                # combine phase reads it.
                post=(
                    ("reap", self.reap),
                    ("merge", self.merge),
                    ("durations", self.store_durations),
                    ("triage", self.triage),
                    ("combine-coverage", self.combine_coverage),
                    ("report", self.report),
                ),
            )
        except RunFailed:
            if self.status is not RunStatus.PASSED_WITH_WARNINGS:
                raise
            self.host.warn(
                "noxlib: passed with warnings: every failure was quarantined, or flaky or "
                "parallel-only with tolerate-flaky = true; see the timing report"
            )
        finally:
            finish_run(self.run, self.host.log)

    def install_only(self) -> None:
        """nox --install-only: the venv and its packages, and no run, so no report either (a
        report line would count as a run of no tests in the history)."""
        try:
            self.install()
            self.host.log("noxlib: --install-only: installed; no test runs")
        finally:
            finish_run(self.run, self.host.log)

    # --- pre phases ------------------------------------------------------------------------

    def reap_stale(self) -> None:
        reaping.reap_stale_runs(self.config.state_dir, self.host.log, grace=self.config.reap_grace)

    def start_warden(self) -> None:
        self.warden = reaping.Warden.start(self.run, grace=self.config.reap_grace)

    def prepare(self) -> None:
        """The run's own copies: every part plans from one snapshot of the durations, and
        coverage data stays in the run folder."""
        write_durations(self.run.dir / "durations.json", self.durations)
        if measures_coverage(self.plan, self.config):
            root, settings = self.config.root, self.config.coverage
            python = measure.venv_python(self.host.bin().parent)
            contexts = records_map(self.plan, self.config)
            core = measure.core_for_run(root, settings, python, contexts)
            self.host.log(f"noxlib: {core.line()}")
            self.rcfile = measure.write_rcfile(root, settings, self.run.dir, python, contexts)
        self.order_env = self.order.env(self.run.dir)
        self.code = self.identify_code()

    def identify_code(self) -> str:
        """The commit and uncommitted Python files this run tests ("" outside git), for
        combine's check and the --affected map this run may record. Asked of git only by a
        CI shard and by a run that records the map: every other run would pay for nothing."""
        records = bool(self.rcfile) and records_map(self.plan, self.config)
        if not (records or self.plan.shard):
            return ""
        try:
            commit, dirty = coveragemap.map_base(self.config.root)
        except GitError as exc:
            if records:
                self.host.log(
                    f"noxlib: no --affected map from this run: git cannot name its commit ({exc})"
                )
            return ""
        if records:
            self.map_base = (commit, dirty)
        return coveragemap.code_digest(commit, dirty)

    def install(self) -> None:
        requirements = (*self.config.group_requirements, *self.config.test_requirements)
        self.host.install(*self.config.install, *TEST_TOOLS, *requirements)
        if self.self_install:
            self.host.install("--no-deps", *self.self_install)
        self.installed = True

    def launch(self) -> Launch:
        env = run_env(
            self.host.env(),
            self.run,
            self.plan,
            self.config,
            rcfile=self.rcfile,
            order_env=self.order_env,
            contexts=self.map_base is not None,
        )
        return Launch(str(self.host.bin() / "python"), env, self.run.dir, self.rcfile)

    def collect_batches(self) -> None:
        """A batched run asks pytest which tests each batch holds, before any batch runs."""
        launch = self.launch()
        self.batch_plan.collect(launch.python, dict(launch.env), self.run.dir, self.host.log)

    # --- the tests -------------------------------------------------------------------------

    def pytest(self) -> None:
        launch = self.launch()
        by_file = file_plan(self.plan, self.config, self.durations, self.order.skip, self.host.log)
        self.parts = make_parts(launch, self.plan, self.config, self.batch_plan.batches, by_file)
        for part in self.parts:
            self.host.log(f"noxlib: {part.name}: {command_line(part)}")
        self.status = RunStatus.INTERRUPTED
        progress = Progress.of_parts(self.parts, self.durations)
        started = time.monotonic()
        try:
            self.outcomes = self.engine(
                self.parts,
                self.plan.slots,
                tick=progress.tick if progress else _no_tick,
                on_end=self.batch_plan.after_part(self.run, self.host.log),
                sampler=self.sampler,
            )
        finally:
            if progress:
                progress.close(time.monotonic() - started)
                sys.stdout.flush()
        self.status = RunStatus.of_parts(o.status for o in self.outcomes)
        self.balance_books()
        self.tell_outcomes()
        if self.status is not RunStatus.PASSED:
            raise RunFailed(f"tests {self.status}")

    def balance_books(self) -> Books:
        """Every test each part set out to run, with one final outcome (books.py)."""
        if self.books is None:
            # Interrupted, the engine returned nothing: every part ended with the run.
            interrupted = "the run was interrupted"
            outcomes = self.outcomes or [
                PartOutcome(p, status=RunStatus.INTERRUPTED, unfinished=interrupted)
                for p in self.parts
            ]
            sources = [
                part_source(o.part.name, o.part.files, unfinished=o.unfinished, problem=o.problem)
                for o in outcomes
            ]
            self.books = balance(sources)
        return self.books

    def tell_outcomes(self) -> None:
        """After parts ran in the background: their failures in pytest's words, and why any
        part ended early."""
        if all(part.passthrough for part in self.parts):
            if not self.batch_plan.batches:  # each batch's line was said as it ended
                for outcome in self.outcomes:
                    if outcome.problem:
                        self.host.log(f"noxlib: {outcome.part.name}: {outcome.problem}")
            return
        text = failures_report(self.results, width=shutil.get_terminal_size().columns)
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
        for outcome in self.outcomes:
            for line in outcome_lines(outcome):
                self.host.log(f"noxlib: {outcome.part.name}: {line}")

    # --- post phases -----------------------------------------------------------------------

    def reap(self) -> None:
        # The warden watches until the sweep is done: should nox be killed meanwhile, it ends
        # the rest.
        spare = (self.warden.process.pid,) if self.warden else ()
        try:
            reaping.reap_run(self.run, self.host.log, grace=self.config.reap_grace, spare=spare)
        finally:
            if self.warden:
                self.warden.stop()

    def merge(self) -> None:
        """One run from its parts: its books, results, JUnit XML and durations. A run whose
        books do not balance fails here, whatever its parts said."""
        books = self.balance_books()
        files = [part.files for part in self.parts]
        junit = [path for f in files for path in f.junit_files()] if self.plan.mode.ci else None
        write_merged(books, books.expected, self.config.reports_path, junit)
        if not self.rcfile:
            cover.forget_published(self.config.reports_path)
        self.host.log(f"noxlib: {books.line()}")
        if not books.balanced and self.status is not RunStatus.INTERRUPTED:
            self.fail("the books do not balance")
            raise RunFailed(books.line())

    def store_durations(self) -> None:
        """The durations file learns this run's tests (a post phase of its own: its cost grows
        with the suite, and the report shows it)."""
        if not self.results or self.books is None:
            return
        update_run_durations(
            self.config.durations,
            self.config.durations.target(store=self.plan.options.store_durations),
            self.books,
            [part.files for part in self.parts],
            whole_files=not self.plan.explicit_paths,
            root=self.config.root,
            lock=self.config.state_dir / DURATIONS_LOCK,
        )

    def fail(self, reason: str) -> None:
        """The run fails for ``reason``, whatever its tests did (never tolerated)."""
        if self.status in (RunStatus.PASSED, RunStatus.PASSED_WITH_WARNINGS):
            self.status = RunStatus.FAILED
        self.reason = "; ".join(filter(None, (self.reason, reason)))
        self.tolerated = False

    def triage(self) -> None:
        """Rerun the failed tests serially, each rerun one fresh pytest process, and classify
        them (docs/testing.md#triage). A green run does nothing here."""
        failed = triage.failing(self.results)
        if failed:
            self.failures = self.judging.rerun(failed)
        self.failures = self.judging.hold(self.failures)
        if failed:
            annotated = triage.annotate(self.results, self.failures)
            write_results(self.config.reports_path / RESULTS_FILE, annotated)
            if self.plan.mode.ci:  # the session that writes the JUnit XML
                from noxlib.junit import add_reruns  # here only: other runs skip xml.etree

                add_reruns(self.config.reports_path / JUNIT_FILE, self.failures)
        balanced = self.books is not None and self.books.balanced
        only_tests_failed = self.status in _TOLERABLE and not self.reason
        if balanced and only_tests_failed:
            self.tolerated = triage.tolerated(self.failures, self.config.tolerate_flaky)

    def combine_coverage(self) -> None:
        if not self.rcfile:
            return
        if not self.installed:
            self.host.log("noxlib: no coverage to combine: the venv install did not finish")
            return
        reports = self.config.reports_path if self.plan.mode.ci else None
        args = cover.run_args(self.run.dir / "coverage", self.config.reports_path, reports)
        if self.map_base and self.status is not RunStatus.INTERRUPTED:
            # An interrupted test's lines are cut short: no map rather than a wrong one.
            results = ((str(r.get("nodeid")), str(r.get("outcome"))) for r in self.results)
            ids, _ = collected([part.files for part in self.parts])
            spec = coveragemap.write_map_spec(
                self.run.dir,
                self.map_out(),
                self.config.root,
                self.map_base,
                results,
                collected=ids,
            )
            args += ["--affected-map", str(spec)]
        # A CI shard holds part of the run's coverage: combine judges the whole.
        judge = self.plan.shard is None
        python, env = str(self.host.bin() / "python"), self.host.env()
        fail_under = self.config.coverage.fail_under
        self.coverage = cover.run_in_venv(python, env, fail_under, self.rcfile, args, judge=judge)
        if self.coverage.failed:
            self.fail(self.coverage.sentence())
            raise RunFailed(self.coverage.sentence())

    def report(self) -> None:
        if self.tolerated and self.status in _TOLERABLE:
            self.status = RunStatus.PASSED_WITH_WARNINGS
        info = self.run_info()
        write_run_info(self.config.reports_path, info)
        inputs, passed = self.judging.evidence_fields()
        results = tuple(reports.report_results(self.results))
        summary = reports.RunSummary(
            session=self.host.name,
            run_id=self.run.run_id,
            groups=info.groups,
            mode="parallel" if self.plan.parallel else "serial",
            workers=self.plan.slots,
            status=self.status_text(),
            wall_seconds=self.pipeline.elapsed(),
            phases=tuple(self.pipeline.timings),
            results=results,
            started_at=self.started_at,
            list_all_up_to=self.config.report_all_tests,
            engine=self.plan.engine.name,
            shard=info.shard,
            parts=info.parts,
            batches=tuple(self.batch_plan.report_rows()),
            peak_rss=self.sampler.run_peak,
            memory_budget=self.plan.slots * self.config.memory_per_worker,
            sampler_seconds=self.sampler.spent,
            failures=tuple(self.failures),
            coverage_percent=self.coverage.total if self.coverage else None,
            books=self.books.line() if self.books else "",
            inputs=inputs,
            code=self.code if inputs else "",
            passed_watched=passed,
            shadow=self.judged_shadow(results),
        )
        path, _ = write_report(summary, Settings.of(self.config), os.environ)
        self.host.log(f"noxlib: {reports.counts_line(summary)}; timing report: {path}")

    def map_out(self) -> Path:
        """A CI matrix shard's map, of its share only, goes with its reports: combine merges
        the shards' maps into the project's map."""
        if self.plan.shard:
            return self.config.reports_path / coveragemap.SHARD_MAP_FILE
        return self.config.map_path

    def judged_shadow(self, results: Sequence[reports.TestResult]) -> shadow.ShadowVerdict | None:
        if self.shadow is None:
            return None
        verdict = shadow.judge(self.shadow, ((r.nodeid, r.outcome, r.duration) for r in results))
        self.host.log(f"noxlib: {verdict.log_line()}")
        return verdict

    def status_text(self) -> str:
        return f"{self.status} ({self.reason})" if self.reason else str(self.status)

    def run_info(self) -> RunInfo:
        base = RunInfo(
            session=self.host.name,
            groups=tuple(g.name for g in self.plan.groups),
            shard=str(self.plan.shard) if self.plan.shard else None,
            plan="",
            root=str(self.config.root),
            status=str(self.status),
            wall_seconds=round(self.pipeline.elapsed(), 3),
            parts=(),
            code=self.code,
            run_id=self.run.run_id,
            reason=self.reason,
        )
        return describe_run(base, self.outcomes, self.host.bin(), self.books)


def _no_tick(elapsed: float) -> None:
    return None
