"""The nox boundary: the only module that imports nox.

It translates: nox's session and posargs in, the plan's decisions and the pipeline's phases out.
Every decision lives in a plain module below (config, plan, runs, reaping, cover, reports).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import nox
import nox.command

from noxlib import affected, cover, coveragemap, findings, history, reaping, reports, reruns, triage
from noxlib.batches import BatchCheck, batch_check, previous_batches, server_events
from noxlib.byfile import FileShare, split_by_file
from noxlib.config import Config, load_config
from noxlib.durations import read_durations, write_durations
from noxlib.engine import Part, PartOutcome, run_parts
from noxlib.errors import NoxlibError, UsageError
from noxlib.gitdiff import GitError
from noxlib.memory import Sampler
from noxlib.merge import (
    JUNIT_FILE,
    RESULTS_FILE,
    PartRow,
    Result,
    RunInfo,
    check_shard_set,
    collected,
    disagreeing_parts,
    merge_junit,
    merged_results,
    read_run_info,
    selected_event,
    update_durations,
    write_results,
    write_run_info,
)
from noxlib.options import help_text
from noxlib.parts import (
    BATCH_ENV,
    CONTEXTS_ENV,
    DURATIONS_ENV,
    FILE_SHARE_ENV,
    GC_FREEZE_ENV,
    KEEP_TOGETHER_ENV,
    SHARDS_ENV,
    WORKER_COUNT_ENV,
    WORKER_ENV,
    PartFiles,
    pricer,
)
from noxlib.pipeline import Pipeline
from noxlib.plan import (
    GROUPS_ENV,
    MODES,
    WORKERS_ENV,
    Batch,
    Engine,
    Mode,
    Plan,
    banner,
    batches,
    current_machine,
    deselected,
    groups_for_plugin,
    known_durations,
    make_plan,
    may_split_by_file,
    measures_coverage,
    parse_worker_setting,
    pytest_args,
)
from noxlib.progress import Progress, failures_report
from noxlib.reaping import Run, finish_run, start_run
from noxlib.reaping.runs import PART_NAME_ENV, ensure_state_dir

# patch = subprocess came in coverage 7.10 and measured subprocesses started in other folders
# only from 7.10.3/7.10.6; the [run] core setting came in 7.9; sysmon's branch measurement on
# Python 3.14 claimed missing branches wrongly before 7.11.1.
COVERAGE_REQUIREMENT = "coverage>=7.11.1"
# What every session venv gets besides the project: the runner, its plugins, and psutil for
# noxlib's own plugin (installed with --no-deps so nox itself stays out of the venv).
TEST_TOOLS: tuple[str, ...] = (
    "pytest",
    "pytest-xdist",
    COVERAGE_REQUIREMENT,
    "pytest-timeout",
    "psutil",
    "tomli; python_version < '3.11'",
)
VENV_BACKEND = "uv|virtualenv"
DURATIONS_LOCK = "durations.lock"
# After Ctrl-C or SIGTERM nox sends pytest SIGTERM at once (the plugin turns it into a clean
# KeyboardInterrupt) and gives it this long to tear down servers and save coverage.
PYTEST_SHUTDOWN_SECONDS = 30.0


def _fail_loading(exc: NoxlibError) -> None:
    # Raised while nox imports the noxfile: a traceback would bury the message, so print it alone
    # and stop before nox creates any venv.
    sys.stderr.write(f"noxlib: {exc}\n")
    raise SystemExit(2)


def register_sessions(
    root: str | Path | None = None,
    *,
    python: str | Sequence[str] | None = None,
    venv_backend: str = VENV_BACKEND,
) -> Config:
    """Register the ``tests``, ``tests-parallel``, ``ci``, ``combine`` and ``reap`` sessions.

    ``root`` is the project folder whose pyproject.toml holds ``[tool.noxlib]``; by default the
    noxfile's folder (nox runs noxfiles from there). ``python`` and ``venv_backend`` go to
    ``nox.session``; without ``python``, the ``python`` setting's versions make the test
    sessions nox's parametrized ones (``tests-3.12``). Returns the validated config, so a
    noxfile can build more sessions on it.
    """
    try:
        config = load_config(Path(root or Path.cwd()).resolve())
        if os.environ.get(WORKERS_ENV, "").strip():
            parse_worker_setting(os.environ[WORKERS_ENV], f"the environment variable {WORKERS_ENV}")
    except NoxlibError as exc:
        _fail_loading(exc)
    pythons = python if python is not None else list(config.python) or None
    for mode in MODES.values():
        nox.session(
            name=mode.name, python=pythons, venv_backend=venv_backend, default=mode.name == "tests"
        )(_session_for(mode, config))
    nox.session(name="reap", venv_backend="none", default=False)(_reap_session_for(config))
    # One interpreter merges the shards of every version: combine is never parametrized.
    single = python if isinstance(python, str) else None
    nox.session(name="combine", python=single, venv_backend=venv_backend, default=False)(
        _combine_session_for(config)
    )
    return config


def _session_for(mode: Mode, config: Config) -> Callable[[nox.Session], None]:
    def session_func(session: nox.Session) -> None:
        run_tests(session, config, mode.name)

    session_func.__doc__ = mode.doc
    session_func.__name__ = mode.name.replace("-", "_")
    return session_func


def _reap_session_for(config: Config) -> Callable[[nox.Session], None]:
    def reap(session: nox.Session) -> None:
        """End what dead runs of this checkout left running (-- --dry-run only lists them)."""
        unknown = [a for a in session.posargs if a != "--dry-run"]
        if unknown:
            session.error(
                f"Unknown argument(s) {unknown} for the reap session; it takes --dry-run."
            )
        reaped = reaping.reap_stale_runs(
            config.state_dir,
            session.log,
            grace=config.reap_grace,
            dry_run="--dry-run" in session.posargs,
        )
        if not reaped:
            session.log("noxlib: no process left by a dead run is running")

    return reap


def _combine_session_for(config: Config) -> Callable[[nox.Session], None]:
    def combine_session(session: nox.Session) -> None:
        """Merge CI shards' reports folders (-- DIR ...) into one run's reports."""
        combine(session, config)

    combine_session.__name__ = "combine"
    return combine_session


def self_install_args() -> list[str]:
    """pip arguments that install into a venv the very noxlib nox imported.

    A checkout (the package's parent folder holds noxlib's pyproject.toml) installs editable
    from there; a wheel or folder install from its recorded direct URL; else the same version
    from the index. So the pytest plugin in the venv always matches the nox side.
    """
    package_root = Path(__file__).resolve().parent.parent
    pyproject = package_root / "pyproject.toml"
    if pyproject.is_file() and 'name = "noxlib"' in pyproject.read_text(encoding="utf-8"):
        return ["-e", str(package_root)]
    import importlib.metadata  # only off a checkout; costs 25 ms to import
    from urllib.parse import unquote, urlparse

    dist = importlib.metadata.distribution("noxlib")
    direct = dist.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        url = info.get("url", "")
        if url.startswith("file://"):
            path = unquote(urlparse(url).path)
            editable = info.get("dir_info", {}).get("editable", False)
            return ["-e", path] if editable else [path]
    return [f"noxlib=={dist.version}"]


class TestRun:
    """The phases of one test run, each a method the pipeline times."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        session: nox.Session,
        config: Config,
        plan: Plan,
        run: Run,
        durations: Mapping[str, float],
        *,
        order: affected.TestOrder | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.plan = plan
        self.run = run
        self.durations = durations
        self.pipeline = Pipeline(log=session.log)
        self.rcfile: Path | None = None
        self.installed = False
        self.status = "not started"
        self.warden: reaping.Warden | None = None
        self.started_at = reports.now_iso()
        self.parts: list[Part] = []
        self.outcomes: list[PartOutcome] = []
        self.results: list[Result] = []
        self.rows: list[PartRow] = []
        self.notes: list[str] = []
        self.batches = batches(plan, config, config.python_files)
        self.batch_rows: list[BatchCheck] = []
        self.sampler = Sampler()
        self.skipped_batches: list[str] = []
        self.failures: list[triage.Failure] = []
        self.tolerated = False  # every failure parallel-only or flaky, and tolerate-flaky set
        self.started_wall = time.time()
        # --affected's selection and last run's failures first; the map this run records.
        self.order = order or affected.TestOrder()
        self.order_env: dict[str, str] = {}
        self.map_base: tuple[str, dict[str, str]] | None = None

    # pre phases
    def reap_stale(self) -> None:
        reaping.reap_stale_runs(
            self.config.state_dir, self.session.log, grace=self.config.reap_grace
        )

    def start_warden(self) -> None:
        self.warden = reaping.Warden.start(self.run, grace=self.config.reap_grace)

    def prepare(self) -> None:
        """The run's own copies: every part plans from one snapshot of the durations, and
        coverage data stays in the run folder."""
        write_durations(self.run.dir / "durations.json", self.durations)
        if measures_coverage(self.plan, self.config):
            root, settings = self.config.root, self.config.coverage
            python = cover.venv_python(Path(self.session.bin).parent)
            contexts = _records_map(self.plan, self.config)
            core = cover.core_for_run(root, settings, python, contexts)
            self.session.log(f"noxlib: {core.line()}")
            self.rcfile = cover.write_rcfile(root, settings, self.run.dir, python, contexts)
        self.order_env = self.order.env(self.run.dir)
        self.map_base = _map_base(self.session, self.config, self.plan, self.rcfile)

    def install(self) -> None:
        requirements = (*self.config.group_requirements, *self.config.test_requirements)
        self.session.install(*self.config.install, *TEST_TOOLS, *requirements)
        self.session.install("--no-deps", *self_install_args())
        self.installed = True

    def pytest(self) -> None:
        self.skip_passed_batches()
        self.parts = self.make_parts()
        for part in self.parts:
            self.session.log(f"noxlib: {part.name}: {shlex.join(part.argv[1:])}")
        self.status = "interrupted"
        progress = None
        if not all(part.passthrough for part in self.parts):
            files = [part.files for part in self.parts]
            tty = sys.stdout.isatty()
            # Priced as the shards price their share: the ETA is one of predicted time.
            price = pricer(self.durations) if self.durations else None
            progress = Progress(files, sys.stdout.write, tty=tty, price=price)
        try:
            self.outcomes = run_parts(
                self.parts,
                self.plan.slots,
                tick=progress.tick if progress else _no_tick,
                on_end=self.after_part,
                sampler=self.sampler,
            )
        finally:
            if progress:
                progress.close()
                sys.stdout.flush()
        self.status = _run_status(self.outcomes)
        self.tell_outcomes()
        if self.status != "passed":
            raise nox.command.CommandFailed(f"tests {self.status}")

    def make_parts(self) -> list[Part]:
        """One pytest process per part: the serial one, the xdist controller, N shards, or
        one per batch."""
        env = self.base_env()
        if self.batches:
            alone = self.plan.slots == 1  # batches one after the other: their output is readable
            return [
                self.part(batch.name, f"batch-{i:03d}", env, passthrough=alone, batch=batch)
                for i, batch in enumerate(self.batches, 1)
            ]
        if self.plan.engine.name != "shards":
            return [self.part(self.plan.engine.name, self.plan.engine.name, env, passthrough=True)]
        count = self.plan.workers.count
        split = self.split_by_file(count)
        return [
            self.part(f"shard-{k}", f"shard-{k}", env, shard=(k, count), by_file=split)
            for k in range(1, count + 1)
        ]

    def split_by_file(self, count: int) -> tuple[list[FileShare], bool] | None:
        """Each shard's files, when the run may and whole files balance well enough; None when
        every shard collects everything and keeps its share of the tests."""
        if not may_split_by_file(self.plan):
            return None
        scope = known_durations(self.durations, self.plan.paths(self.config.root), None)
        left_out = deselected(self.plan.user_args)
        scope = {
            k: v
            for k, v in scope.items()
            if k not in self.order.skip and not k.startswith(left_out)
        }
        levels = [self.plan.shard] if self.plan.shard else []
        split = split_by_file(scope, levels, count, self.config.keep_together)
        if split is not None:
            local = "split by test" if split[1] else "split by file"
            self.session.log(
                f"noxlib: shards collect only their own files (durations of {len(scope)} tests; "
                f"the local level {local})"
            )
        return split

    def part(
        self,
        name: str,
        folder_name: str,
        env: Mapping[str, str],
        *,
        passthrough: bool = False,
        shard: tuple[int, int] | None = None,
        batch: Batch | None = None,
        by_file: tuple[list[FileShare], bool] | None = None,
    ) -> Part:
        folder = self.run.dir / "parts" / folder_name
        args = pytest_args(self.plan, self.config, PartFiles(folder).junit, batch)
        argv = [str(Path(self.session.bin) / "python"), "-m", "pytest", *args]
        if self.rcfile:
            argv[1:3] = ["-m", "coverage", "run", "--rcfile", str(self.rcfile), "-m", "pytest"]
        levels = [str(self.plan.shard)] if self.plan.shard else []
        part_env = {**env, PART_NAME_ENV: name}
        if batch is not None:
            part_env[BATCH_ENV] = "1"
        if shard is not None:
            index, count = shard
            levels.append(f"{index}/{count}")
            if by_file is not None:
                shares, local_by_test = by_file
                share_file = self.run.dir / f"files-{index}.json"
                shares[index - 1].write(share_file)
                part_env[FILE_SHARE_ENV] = str(share_file)
                # The CI shard's files are collected already: what is left is the local split.
                levels = levels[-1:] if local_by_test else []
            # As xdist names its workers: suites give each its own database or folder.
            part_env.update({WORKER_ENV: f"gw{index - 1}", WORKER_COUNT_ENV: str(count)})
        if levels:
            part_env[SHARDS_ENV] = " ".join(levels)
            part_env[KEEP_TOGETHER_ENV] = self.config.keep_together
        timeout = batch.timeout if batch else None
        return Part(name, tuple(argv), part_env, folder, passthrough=passthrough, timeout=timeout)

    def base_env(self) -> dict[str, str]:
        """The session venv's environment (as nox's session.run builds it) and the run's."""
        env = {**os.environ, **{k: v for k, v in self.session.env.items() if v is not None}}
        env["PATH"] = os.pathsep.join([*(self.session.bin_paths or []), env.get("PATH", "")])
        env.update(self.run.env())
        env[GROUPS_ENV] = groups_for_plugin(self.plan.groups, self.config.root)
        env["NOXLIB_SESSION"] = self.plan.mode.name
        env[DURATIONS_ENV] = str(self.run.dir / "durations.json")
        env[GC_FREEZE_ENV] = "1" if self.config.gc_freeze else "0"
        if self.plan.mode.ci:
            env["CI"] = "true"
        if self.rcfile:
            env["COVERAGE_RCFILE"] = str(self.rcfile)
        env.update(self.order_env)
        if self.map_base:
            env[CONTEXTS_ENV] = "1"
        return env

    def skip_passed_batches(self) -> None:
        """``--resume``: leave out the batches that passed in the last run of this session and
        these groups, and say which."""
        if not self.plan.options.resume:
            return
        say = self.session.log
        if not self.batches:
            say("noxlib: --resume: this run has no batches (a group's batch setting, or --batch)")
            return
        groups = [g.name for g in self.plan.groups]
        history = self.config.reports_path / "ci_timings.jsonl"
        found = previous_batches(history, self.session.name, groups)
        if found is None:
            say(
                f"noxlib: --resume: no earlier batched run of session {self.session.name} "
                f"with groups {', '.join(groups)}; running every batch"
            )
            return
        run_id, statuses = found
        passed = {name for name, status in statuses.items() if status in ("passed", "skipped")}
        self.skipped_batches = [b.name for b in self.batches if b.name in passed]
        self.batches = [b for b in self.batches if b.name not in passed]
        say(
            f"noxlib: --resume: skipping {len(self.skipped_batches)} batch(es) that passed in run "
            f"{run_id} ({', '.join(self.skipped_batches) or 'none'}); running "
            f"{len(self.batches)}: {', '.join(b.name for b in self.batches) or 'none'}"
        )

    def after_part(self, outcome: PartOutcome) -> None:
        """Before a slot takes its next batch: what the batch left behind, said in one line."""
        if not self.batches:
            return
        reaped = reaping.reap_part(
            self.run, outcome.part.name, self.session.log, grace=self.config.reap_grace
        )
        leftovers = [f"{r.name} pid {r.pid}" for r in reaped]
        check = batch_check(outcome, leftovers, server_events(outcome.part.files))
        self.batch_rows.append(check)
        if check.line:
            self.session.log(f"noxlib: {check.line}")

    def tell_outcomes(self) -> None:
        """After parts ran in the background: their failures in pytest's words, and why any
        part ended early."""
        if all(part.passthrough for part in self.parts):
            if self.batches:
                return  # each batch's line was said as it ended
            for outcome in self.outcomes:
                if outcome.problem:
                    self.session.log(f"noxlib: {outcome.part.name}: {outcome.problem}")
            return
        # Kept for the merge phase: on a suite of tens of thousands of tests, reading the
        # results again costs a noticeable part of a second.
        self.results = merged_results(part.files.results for part in self.parts)
        text = failures_report(self.results, width=shutil.get_terminal_size().columns)
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
        for outcome in self.outcomes:
            if outcome.problem:
                self.session.log(f"noxlib: {outcome.part.name}: {outcome.problem}")
            for nodeid in outcome.crashed:
                self.session.log(
                    f"noxlib: {outcome.part.name}: its pytest process died while running "
                    f"{nodeid} (reported as crashed); the rest of its tests ran in a new one"
                )
            for nodeid in outcome.timed_out:
                self.session.log(
                    f"noxlib: {outcome.part.name}: pytest-timeout's thread method ended its "
                    f"process in {nodeid} (reported as timeout); the rest ran in a new one"
                )

    # post phases
    def reap(self) -> None:
        # The warden watches until the sweep is done: should nox be killed meanwhile, it ends
        # the rest.
        spare = (self.warden.process.pid,) if self.warden else ()
        try:
            reaping.reap_run(self.run, self.session.log, grace=self.config.reap_grace, spare=spare)
        finally:
            if self.warden:
                self.warden.stop()

    def merge(self) -> None:
        """One run from its parts: results, JUnit XML, durations, the run's description."""
        files = [part.files for part in self.parts]
        self.results = self.results or merged_results(f.results for f in files)
        self.rows = [_part_row(outcome) for outcome in self.outcomes]
        differ = disagreeing_parts(files)
        if differ:
            self.notes.append(
                f"Parts {', '.join(differ)} collected other tests than the first part: shards "
                "may have missed or repeated tests (is collection random or machine-specific?)"
            )
        reports_dir = self.config.reports_path
        if self.results:
            ids, collected_files = collected(files)
            whole = [] if self.plan.explicit_paths else collected_files
            update_durations(
                self.config.durations_path,
                self.results,
                collected_ids=ids,
                whole_files=whole,
                root=self.config.root,
                lock=self.config.state_dir / DURATIONS_LOCK,
            )
        write_results(reports_dir / RESULTS_FILE, self.results)
        if self.plan.mode.ci:
            junit_files = [path for f in files for path in f.junit_files()]
            merge_junit(junit_files, self.results, reports_dir / JUNIT_FILE)
        write_run_info(reports_dir, self.run_info(files))

    def triage(self) -> None:
        """Rerun the failed tests serially, each rerun one fresh pytest process, and classify
        them (docs/testing.md#triage). A green run does nothing here."""
        failed = triage.failing(self.results)
        if not failed:
            return
        off = triage.off_reason(
            self.config.triage, self.plan.options.no_triage, self.plan.user_args
        )
        if self.status == "interrupted":
            off = "the run was interrupted"
        chosen, skipped = triage.choose_reruns(failed, self.config.triage_max, off)
        rounds: list[dict[str, str]] = []
        stopped = False
        if chosen:
            count = self.config.triage_reruns
            self.session.log(
                f"noxlib: triage: rerunning {len(chosen)} failed test(s) serially, {count} "
                "time(s), each time in one fresh pytest process"
            )
            try:
                rounds += reruns.rerun(
                    chosen,
                    count,
                    argv=self.rerun_argv(chosen),
                    env=self.base_env(),
                    folder=self.run.dir / "triage",
                    # A batch's hang was stopped by its batch-timeout; a rerun needs one too.
                    timeout=max((b.timeout for b in self.batches if b.timeout), default=None),
                )
            except KeyboardInterrupt:
                stopped = True
                self.session.log("noxlib: triage interrupted: the rest is reported not-rerun")
            finally:
                # The reruns ran after the reap phase: end what they left, as it would have.
                reaping.reap_run(self.run, self.session.log, grace=self.config.reap_grace)
        self.failures = triage.judge(
            failed,
            rounds,
            skipped,
            parallel=self.plan.parallel,
            root=self.config.root,
            interrupted=stopped,
        )
        annotated = triage.annotate(self.results, self.failures)
        write_results(self.config.reports_path / RESULTS_FILE, annotated)
        self.tolerated = self.config.tolerate_flaky and triage.tolerated(self.failures)
        if self.tolerated:
            self.status = "passed with warnings"
        for failure in self.failures:
            why = f" ({failure.reason})" if failure.reason else ""
            self.session.log(f"noxlib: triage: {failure.nodeid}: {failure.triage}{why}")
        if any(f.triage == triage.PARALLEL_ONLY for f in self.failures):
            self.session.log(f"noxlib: {triage.PARALLEL_ONLY_ADVICE}")

    def rerun_argv(self, nodeids: list[str]) -> tuple[str, ...]:
        """A rerun: the run's pytest arguments for one serial process (timeout, user's
        arguments), over the failed tests' files, without coverage."""
        serial = replace(self.plan, engine=Engine("serial", ""), groups=(), explicit_paths=True)
        args = pytest_args(serial, self.config)
        paths = reruns.rerun_paths(nodeids, self.config.root, self.plan.paths(self.config.root))
        return reruns.rerun_argv(str(Path(self.session.bin) / "python"), paths, args)

    def run_info(self, files: list[PartFiles]) -> RunInfo:
        plans = [selected_event(f).get("plans") for f in files]
        first = next((p for p in plans if isinstance(p, list) and p), [""])
        return RunInfo(
            session=self.session.name,  # nox's name: tests-3.12 keeps its own history
            groups=tuple(g.name for g in self.plan.groups),
            shard=str(self.plan.shard) if self.plan.shard else None,
            plan=str(first[0]) if self.plan.shard else "",
            root=str(self.config.root),
            status=self.status,
            wall_seconds=round(self.pipeline.elapsed(), 3),
            parts=tuple(self.rows),
        )

    def combine_coverage(self) -> None:
        if not self.rcfile:
            return
        if not self.installed:
            self.session.log("noxlib: no coverage to combine: the venv install did not finish")
            return
        reports_dir = self.config.reports_path
        args = ["--data", str(self.run.dir / "coverage")]
        args += ["--publish-data", str(reports_dir / cover.PUBLISHED_DATA)]
        if self.plan.mode.ci:
            args += ["--xml", str(reports_dir / "coverage.xml")]
            args += ["--html", str(reports_dir / "htmlcov")]
        if self.map_base and self.status != "interrupted":
            # An interrupted test's lines are cut short: no map rather than a wrong one.
            results = ((str(r.get("nodeid")), str(r.get("outcome"))) for r in self.results)
            spec = coveragemap.write_map_spec(
                self.run.dir, self.config.map_path, self.config.root, self.map_base, results
            )
            args += ["--affected-map", str(spec)]
        run_cover(self.session, self.config, self.rcfile, args)

    def report(self) -> None:
        summary = reports.RunSummary(
            session=self.session.name,  # nox's name: tests-3.12 keeps its own history
            run_id=self.run.run_id,
            groups=tuple(g.name for g in self.plan.groups),
            mode="parallel" if self.plan.parallel else "serial",
            workers=self.plan.slots,
            status=self.status,
            wall_seconds=self.pipeline.elapsed(),
            phases=tuple(self.pipeline.timings),
            results=tuple(reports.report_results(self.results)),
            started_at=self.started_at,
            list_all_up_to=self.config.report_all_tests,
            engine=self.plan.engine.name,
            shard=str(self.plan.shard) if self.plan.shard else None,
            parts=tuple(self.rows),
            notes=tuple(self.notes),
            batches=tuple(self.batch_json()),
            peak_rss=self.sampler.run_peak,
            memory_budget=self.plan.slots * self.config.memory_per_worker,
            sampler_seconds=self.sampler.spent,
            failures=tuple(self.failures),
            coverage_percent=self.coverage_percent(),
        )
        path, _ = findings.write_report(summary, _findings_settings(self.config), os.environ)
        self.session.log(f"noxlib: {reports.counts_line(summary)}; timing report: {path}")

    def batch_json(self) -> list[dict[str, object]]:
        """The run's batches for the report: those that ran, then those --resume skipped."""
        rows = [check.as_json() for check in self.batch_rows]
        skipped = {"status": "skipped", "seconds": 0.0, "dirty": False, "dirty_reasons": []}
        return rows + [{"name": name, **skipped} for name in self.skipped_batches]

    def coverage_percent(self) -> float | None:
        if not (self.rcfile and self.plan.mode.ci):
            return None
        xml = self.config.reports_path / "coverage.xml"
        return findings.coverage_percent(xml, since=self.started_wall)

    def tolerated_failure(self) -> bool:
        """Whether the run's only failure is tests that triage found parallel-only or flaky,
        with tolerate-flaky set: then the run passes, and its report says so."""
        others = [t for t in self.pipeline.timings if t.name != "pytest" and not t.ok]
        return self.tolerated and not others

    def execute(self) -> None:
        if _install_only(self.session):
            # nox --install-only: the venv and its packages, and no run, so no report either
            # (a report line would count as a run of no tests in the history).
            try:
                self.install()
                self.session.log("noxlib: --install-only: installed; no test runs")
            finally:
                finish_run(self.run, self.session.log)
            return
        try:
            self.pipeline.execute(
                (
                    ("reap-stale", self.reap_stale),
                    ("warden", self.start_warden),
                    ("prepare", self.prepare),
                    ("install", self.install),
                    ("pytest", self.pytest),
                ),
                # Reap first: servers stopped with SIGTERM save their coverage data before the
                # combine phase reads it.
                post=(
                    ("reap", self.reap),
                    ("merge", self.merge),
                    ("triage", self.triage),
                    ("combine-coverage", self.combine_coverage),
                    ("report", self.report),
                ),
            )
        except nox.command.CommandFailed:
            if not self.tolerated_failure():
                raise
            self.session.warn(
                "noxlib: passed with warnings: every failure was flaky or "
                "parallel-only (tolerate-flaky = true); see the timing report"
            )
        finally:
            finish_run(self.run, self.session.log)


def _no_tick(elapsed: float) -> None:
    return None


def _install_only(session: nox.Session) -> bool:
    # nox's session.run skips commands under --install-only; the engine starts its processes
    # itself, so it asks the same setting.
    return bool(getattr(session._runner.global_config, "install_only", False))


def _run_status(outcomes: list[PartOutcome]) -> str:
    """One status for the run: the worst of its parts'; any part that did not pass fails it."""
    statuses = {o.status for o in outcomes}
    if statuses <= {"passed"}:
        return "passed"
    for status in ("interrupted", "error", "crashed", "timeout"):
        if status in statuses:
            return status
    return "failed"


def _part_row(outcome: PartOutcome) -> PartRow:
    event = selected_event(outcome.part.files)
    return PartRow(
        name=outcome.part.name,
        status=outcome.status,
        tests=int(str(event.get("count", 0))),
        predicted=float(str(event.get("predicted", 0.0))),
        seconds=round(outcome.seconds, 3),
        attempts=outcome.attempts,
        problem=outcome.problem,
        peak_rss=outcome.peak_rss,
    )


def _findings_settings(config: Config) -> findings.Settings:
    return findings.Settings(
        reports_dir=config.reports_path,
        reports_name=config.reports_dir,
        flaky_threshold=config.flaky_threshold,
        triage_reruns=config.triage_reruns,
        tolerate_flaky=config.tolerate_flaky,
    )


def _records_map(plan: Plan, config: Config) -> bool:
    """Whether this run records the ``--affected`` map: only ``ci`` does, with
    ``affected.record = true`` (and under coverage, in a git checkout: see _map_base)."""
    return plan.mode.ci and config.affected.record


def _map_base(
    session: nox.Session, config: Config, plan: Plan, rcfile: Path | None
) -> tuple[str, dict[str, str]] | None:
    """The commit (and dirty files) of the ``--affected`` map this run records, or None: it
    records one when _records_map says so, under coverage, in a git checkout."""
    if not (rcfile and _records_map(plan, config)):
        return None
    try:
        return coveragemap.map_base(config.root)
    except GitError as exc:
        session.log(f"noxlib: no --affected map from this run: git cannot name its commit ({exc})")
        return None


def _affected_selection(config: Config, plan: Plan) -> affected.Selection | None:
    """``--affected``: which tests the change since the map's commit can reach; None without
    it. Raises UsageError for a map that cannot be read."""
    if not plan.options.affected:
        return None
    own = [config.durations_file, config.affected.map_file, config.reports_dir.rstrip("/") + "/"]
    rules = affected.rules_for(own, config.affected.ignore, config.python_files)
    return affected.select_since_map(config.root, config.map_path, rules)


def _selection_line(selection: affected.Selection, plan: Plan, config: Config) -> str:
    known = known_durations(dict.fromkeys(selection.tests, 0.0), plan.paths(config.root), None)
    return f"noxlib: {selection.line(known)}"


def run_cover(session: nox.Session, config: Config, rcfile: Path, args: list[str]) -> None:
    """``python -m noxlib.cover`` in the session venv (where coverage is), judged against the
    project's thresholds."""
    threshold = ["--fail-under", f"{config.coverage.fail_under:g}"]
    session.run("python", "-m", "noxlib.cover", "--rcfile", str(rcfile), *args, *threshold)


def run_tests(session: nox.Session, config: Config, mode: str = "tests") -> None:
    """Run ``config``'s tests in ``session`` the way session ``mode`` does.

    The building block behind the registered sessions: a noxfile can call it from its own
    session (e.g. with another python) and get the same plan, phases, reaping and reports.
    """
    past = history.read_history(config.reports_path / findings.TIMINGS_FILE)
    rate = history.flakiness(past, config.flaky_threshold)
    machine = current_machine()
    try:
        durations = read_durations(config.durations_path)
        plan_from = functools.partial(
            make_plan, MODES[mode], session.posargs, os.environ, config, machine, flakiness=rate
        )
        plan = plan_from(durations=durations)
        selection = _affected_selection(config, plan)
        if selection is not None and selection.skip:
            # Plan from the tests that will run: auto must not start shards for five tests.
            plan = plan_from(
                durations={k: v for k, v in durations.items() if k not in selection.skip}
            )
    except UsageError as exc:
        session.error(str(exc))
    if plan.options.help:
        session.log(help_text())
        return
    session.log(banner(plan, config))
    if selection is not None:
        session.log(_selection_line(selection, plan, config))
    first = tuple(affected.last_failures(past, session.name))
    if first:
        name, count = session.name, len(first)
        session.log(f"noxlib: the {count} test(s) that failed in the last {name} run go first")
    rollback = history.rollback_line(rate, config.reports_dir)
    if rollback:
        session.log(f"noxlib: {rollback}")
    order = affected.TestOrder(selection.skip if selection else frozenset(), first)
    TestRun(session, config, plan, start_run(config.state_dir), durations, order=order).execute()


def combine(session: nox.Session, config: Config) -> None:
    """Merge the reports folders of a CI matrix's shards (posargs) into this project's."""
    folders = [Path(word) for word in session.posargs]
    try:
        infos = [(folder, read_run_info(folder)) for folder in folders]
        total = check_shard_set(infos)
    except UsageError as exc:
        session.error(str(exc))
    session.log(f"noxlib: combining {total} shards: {', '.join(map(str, folders))}")
    pipeline = Pipeline(log=session.log)
    reports_dir = config.reports_path
    results = merged_results(folder / RESULTS_FILE for folder in folders)

    def merge_files() -> None:
        junit = [folder / JUNIT_FILE for folder in folders]
        merge_junit(junit, results, reports_dir / JUNIT_FILE)
        write_results(reports_dir / RESULTS_FILE, results)
        ensure_state_dir(config.state_dir)  # with its .gitignore: the lock lives there
        lock = config.state_dir / DURATIONS_LOCK
        size = update_durations(config.durations_path, results, root=config.root, lock=lock)
        session.log(f"noxlib: durations of {size} tests in {config.durations_path}")

    def combine_coverage() -> None:
        data = [folder / cover.PUBLISHED_DATA for folder in folders]
        data = [path for path in data if path.is_file()]
        if not data:
            session.log("noxlib: no shard left coverage data; no coverage to combine")
            return
        session.install(COVERAGE_REQUIREMENT, "tomli; python_version < '3.11'")
        session.install("--no-deps", *self_install_args())
        rcfile = cover.write_rcfile(config.root, config.coverage, Path(session.create_tmp()))
        roots = {info.root for _, info in infos} - {str(config.root)}
        args = [arg for path in data for arg in ("--data", str(path))]
        args += [arg for root in sorted(roots) for arg in ("--other-root", root)]
        args += ["--publish-data", str(reports_dir / cover.PUBLISHED_DATA)]
        args += ["--xml", str(reports_dir / "coverage.xml"), "--html", str(reports_dir / "htmlcov")]
        run_cover(session, config, rcfile, args)

    def report() -> None:
        first = infos[0][1]
        rows = [_shard_row(info) for info in sorted((i for _, i in infos), key=_shard_index)]
        # "passed with warnings": a shard whose only failures were tolerated flaky ones.
        failed = [row.name for row in rows if not row.status.startswith("passed")]
        summary = reports.RunSummary(
            session=first.session,
            run_id=f"combined {total} shards",
            groups=first.groups,
            mode=f"sharded across {total} machines",
            workers=total,
            status=f"failed ({', '.join(failed)})" if failed else "passed",
            wall_seconds=max(info.wall_seconds for _, info in infos),
            phases=tuple(pipeline.timings),
            results=tuple(reports.report_results(results)),
            started_at=reports.now_iso(),
            engine="shards",
            parts=tuple(rows),
            failures=tuple(triage.from_annotated(results, config.root)),
        )
        path, _ = findings.write_report(summary, _findings_settings(config), os.environ)
        session.log(f"noxlib: {reports.counts_line(summary)}; timing report: {path}")
        if failed:
            raise nox.command.CommandFailed(f"shards {', '.join(failed)} did not pass")

    pipeline.execute(
        (("merge", merge_files), ("combine-coverage", combine_coverage)),
        post=(("report", report),),
    )


def _shard_index(info: RunInfo) -> int:
    return int(str(info.shard).split("/")[0])


def _shard_row(info: RunInfo) -> PartRow:
    return PartRow(
        name=f"shard {info.shard}",
        status=info.status,
        tests=sum(row.tests for row in info.parts),
        predicted=max((row.predicted for row in info.parts), default=0.0),
        seconds=info.wall_seconds,
        attempts=sum(row.attempts for row in info.parts),
    )
