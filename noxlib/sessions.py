"""The nox boundary: the only module that imports nox.

It translates: nox's session and posargs in, the plan's decisions and the pipeline's phases out.
Every decision lives in a plain module below (config, plan, runs, reaping, cover, reports).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import nox
import nox.command

from noxlib import cover, reaping, reports
from noxlib.config import Config, load_config
from noxlib.errors import NoxlibError, UsageError
from noxlib.pipeline import Pipeline
from noxlib.plan import (
    GROUPS_ENV,
    MODES,
    WORKERS_ENV,
    Mode,
    Plan,
    banner,
    current_machine,
    groups_for_plugin,
    make_plan,
    parse_worker_setting,
    pytest_args,
)
from noxlib.reaping import Run, finish_run, start_run

# What every session venv gets besides the project: the runner, its plugins, and psutil for
# noxlib's own plugin (installed with --no-deps so nox itself stays out of the venv).
TEST_TOOLS: tuple[str, ...] = (
    "pytest",
    "pytest-xdist",
    "coverage",
    "pytest-timeout",
    "psutil",
    "tomli; python_version < '3.11'",
)
VENV_BACKEND = "uv|virtualenv"
# After Ctrl-C or SIGTERM nox sends pytest SIGTERM at once (the plugin turns it into a clean
# KeyboardInterrupt) and gives it this long to tear down servers and save coverage.
PYTEST_SHUTDOWN_SECONDS = 30.0


def _fail_loading(exc: NoxlibError) -> None:
    # Raised while nox imports the noxfile: a traceback would bury the message, so print it alone
    # and stop before nox creates any venv.
    sys.stderr.write(f"noxlib: {exc}\n")
    raise SystemExit(2)


def register_sessions(
    root: str | Path | None = None, *, python: str | None = None, venv_backend: str = VENV_BACKEND
) -> Config:
    """Register the ``tests``, ``tests-parallel``, ``ci`` and ``reap`` sessions with nox.

    ``root`` is the project folder whose pyproject.toml holds ``[tool.noxlib]``; by default the
    noxfile's folder (nox runs noxfiles from there). ``python`` and ``venv_backend`` go to
    ``nox.session``. Returns the validated config, so a noxfile can build more sessions on it.
    """
    try:
        config = load_config(Path(root or Path.cwd()).resolve())
        if os.environ.get(WORKERS_ENV, "").strip():
            parse_worker_setting(os.environ[WORKERS_ENV], f"the environment variable {WORKERS_ENV}")
    except NoxlibError as exc:
        _fail_loading(exc)
    for mode in MODES.values():
        nox.session(
            name=mode.name, python=python, venv_backend=venv_backend, default=mode.name == "tests"
        )(_session_for(mode, config))
    nox.session(name="reap", venv_backend="none", default=False)(_reap_session_for(config))
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

    def __init__(self, session: nox.Session, config: Config, plan: Plan, run: Run) -> None:
        self.session = session
        self.config = config
        self.plan = plan
        self.run = run
        self.pipeline = Pipeline(log=session.log)
        self.rcfile: Path | None = None
        self.installed = False
        self.status = "not started"
        self.warden: reaping.Warden | None = None
        self.started_at = reports.now_iso()

    # pre phases
    def reap_stale(self) -> None:
        reaping.reap_stale_runs(
            self.config.state_dir, self.session.log, grace=self.config.reap_grace
        )

    def start_warden(self) -> None:
        self.warden = reaping.Warden.start(self.run, grace=self.config.reap_grace)

    def erase_coverage(self) -> None:
        removed = cover.erase_data(self.config.root)
        if removed:
            self.session.log(f"noxlib: erased {removed} old coverage data file(s)")
        if self.config.coverage.enabled:
            self.rcfile = cover.write_rcfile(self.config.root, self.config.coverage, self.run.dir)

    def install(self) -> None:
        self.session.install(*self.config.install, *TEST_TOOLS, *self.config.test_requirements)
        self.session.install("--no-deps", *self_install_args())
        self.installed = True

    def pytest(self) -> None:
        env = {
            **self.run.env(),
            GROUPS_ENV: groups_for_plugin(self.plan.groups, self.config.root),
            "NOXLIB_SESSION": self.plan.mode.name,
        }
        if self.plan.mode.ci:
            env["CI"] = "true"
        command = ["python", "-m", "pytest", *pytest_args(self.plan, self.config)]
        if self.rcfile:
            env["COVERAGE_RCFILE"] = str(self.rcfile)
            command[1:3] = ["-m", "coverage", "run", "--rcfile", str(self.rcfile), "-m", "pytest"]
        self.status = "interrupted"
        try:
            self.session.run(
                *command,
                env=env,
                interrupt_timeout=0.0,
                terminate_timeout=PYTEST_SHUTDOWN_SECONDS,
            )
        except nox.command.CommandFailed as exc:
            self.status = f"failed (pytest exit {exc.return_code})"
            raise
        self.status = "passed"

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

    def combine_coverage(self) -> None:
        if not self.rcfile:
            return
        if not self.installed:
            self.session.log("noxlib: no coverage to combine: the venv install did not finish")
            return
        args = [
            "--rcfile",
            str(self.rcfile),
            "--fail-under",
            f"{self.config.coverage.fail_under:g}",
        ]
        if self.plan.mode.ci:
            reports_dir = self.config.reports_path
            args += [
                "--xml",
                str(reports_dir / "coverage.xml"),
                "--html",
                str(reports_dir / "htmlcov"),
            ]
        self.session.run("python", "-m", "noxlib.cover", *args)

    def report(self) -> None:
        summary = reports.RunSummary(
            session=self.plan.mode.name,
            run_id=self.run.run_id,
            groups=tuple(g.name for g in self.plan.groups),
            mode="parallel" if self.plan.parallel else "serial",
            workers=self.plan.workers.count,
            status=self.status,
            wall_seconds=self.pipeline.elapsed(),
            phases=tuple(self.pipeline.timings),
            results=tuple(reports.read_results(self.run.results_path)),
            started_at=self.started_at,
            list_all_up_to=self.config.report_all_tests,
        )
        path = reports.write_reports(self.config.reports_path, summary)
        counts = summary.counts()
        self.session.log(
            f"noxlib: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, {counts['error']} errors in "
            f"{summary.wall_seconds:.1f} s; timing report: {path}"
        )

    def execute(self) -> None:
        try:
            self.pipeline.execute(
                (
                    ("reap-stale", self.reap_stale),
                    ("warden", self.start_warden),
                    ("erase-coverage", self.erase_coverage),
                    ("install", self.install),
                    ("pytest", self.pytest),
                ),
                # Reap first: servers stopped with SIGTERM save their coverage data before the
                # combine phase reads it.
                post=(
                    ("reap", self.reap),
                    ("combine-coverage", self.combine_coverage),
                    ("report", self.report),
                ),
            )
        finally:
            finish_run(self.run, self.session.log)


def run_tests(session: nox.Session, config: Config, mode: str = "tests") -> None:
    """Run ``config``'s tests in ``session`` the way session ``mode`` does.

    The building block behind the registered sessions: a noxfile can call it from its own
    session (e.g. with another python) and get the same plan, phases, reaping and reports.
    """
    try:
        plan = make_plan(MODES[mode], session.posargs, os.environ, config, current_machine())
    except UsageError as exc:
        session.error(str(exc))
    session.log(banner(plan, config))
    TestRun(session, config, plan, start_run(config.state_dir)).execute()
