"""The pytest plugin (entry point ``pytest11``): the only module that imports pytest.

Inside a noxlib run (``NOXLIB_RUN_DIR`` set) it marks items by group, records each test's
outcome and duration for the timing report, and turns SIGTERM into a clean interrupt. It offers
``record_process`` (reaping) and the ``noxlib_servers`` fixture (managed servers) in any pytest
run; outside a noxlib run the rest stays out of the way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from noxlib.reaping.runs import RUN_DIR_ENV, RUN_ID_ENV
from noxlib.timeouts import is_timeout_failure

# xdist's name for a worker process; noxlib gives each shard process one too.
WORKER_ENV = "PYTEST_XDIST_WORKER"
# When this process started, near enough: pytest loads its plugins first.
_LOADED = time.monotonic()

if TYPE_CHECKING:
    from noxlib.byfile import FileShare
    from noxlib.parts import PartFiles
    from noxlib.servers import Server, ServerManager


class ResultsRecorder:
    """Appends one JSON line per finished test to the part's results file; a line is written
    as soon as its test ends, so a process killed half-way still reports what it did.

    The outcome is one of `parts.STATUSES`: a collection error counts as an error of its file,
    a test that pytest-timeout stopped as ``timeout``, one whose xdist worker died as
    ``crashed``. Failures carry pytest's own text of them, for the run's summary and triage.
    """

    def __init__(self, path: Path, part: str, files: PartFiles | None = None) -> None:
        self.part = part
        self.files = files  # the part's folder: where thread-method timers are noted
        # Line-buffered: one write per test, and nothing lost when the process dies.
        self.out = path.open("a", encoding="utf-8", buffering=1)
        self.started = files.started.open("a", encoding="utf-8", buffering=1) if files else None
        self.partial: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        # Before the test's setup: a process that dies in it leaves this line as the proof of
        # which test it was running, whatever order plugins gave the tests (--ff, --sw, ...).
        if self.started is not None:
            from noxlib.idfile import append_id

            append_id(self.started, nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when not in ("setup", "call", "teardown"):
            # xdist's report for a test whose worker died: the only report that test gets.
            self._write(
                report, {"duration": report.duration, "outcome": self._death(report)}, report
            )
            return
        entry = self.partial.setdefault(report.nodeid, {"duration": 0.0, "outcome": None})
        entry["duration"] += report.duration
        if not report.passed and "failure" not in entry and not report.skipped:
            entry["failure"] = report
        if report.when == "setup" and not report.passed:
            entry["outcome"] = "error" if report.failed else "skipped"
        elif report.when == "call":
            if hasattr(report, "wasxfail"):
                entry["outcome"] = "xfailed" if report.skipped else "xpassed"
            else:
                entry["outcome"] = report.outcome
        elif report.when == "teardown":
            if report.failed and entry["outcome"] in (None, "passed"):
                entry["outcome"] = "error"
            entry = self.partial.pop(report.nodeid)
            self._write(report, entry, entry.get("failure"))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(report, {"duration": 0.0, "outcome": "error"}, report)

    def _write(
        self,
        report: pytest.TestReport | pytest.CollectReport,
        entry: dict[str, Any],
        failure: pytest.TestReport | pytest.CollectReport | None,
    ) -> None:
        outcome = entry["outcome"] or "passed"
        line: dict[str, Any] = {
            "nodeid": report.nodeid,
            "outcome": outcome,
            "duration": round(entry["duration"], 6),
            "worker": _worker_of(report) or self.part,
        }
        if failure is not None and outcome not in ("passed", "skipped", "xfailed", "xpassed"):
            line.update(_failure_details(failure))
            crash = line.get("crash", {}).get("message", "")
            if outcome == "failed" and is_timeout_failure(crash):
                line["outcome"] = "timeout"
        self.out.write(json.dumps(line) + "\n")

    def _death(self, report: pytest.TestReport) -> str:
        """``timeout`` when the dead worker's test had outlived a thread-method timer (which
        ends the process), else ``crashed``."""
        if self.files is None:
            return "crashed"
        from noxlib.timeouts import thread_timeout

        limit = thread_timeout(self.files.events(), report.nodeid, time.time())
        return "crashed" if limit is None else "timeout"

    def pytest_unconfigure(self) -> None:
        self.out.close()
        if self.started is not None:
            self.started.close()


MAX_LONGREPR = 20_000


def _worker_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    node = getattr(report, "node", None)  # set by xdist on the controller
    return str(getattr(getattr(node, "gateway", None), "id", ""))


def _failure_details(report: pytest.TestReport | pytest.CollectReport) -> dict[str, Any]:
    """pytest's text of a failure, its captured output, and where it was raised."""
    text = report.longreprtext
    if len(text) > MAX_LONGREPR:
        half = MAX_LONGREPR // 2
        text = f"{text[:half]}\n[... cut by noxlib ...]\n{text[-half:]}"
    details: dict[str, Any] = {
        "when": report.when if isinstance(report, pytest.TestReport) else "collect",
        "longrepr": text,
        "sections": [[title, content[-MAX_LONGREPR:]] for title, content in report.sections],
    }
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        details["crash"] = {"path": crash.path, "lineno": crash.lineno, "message": crash.message}
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", [])
    frames = [[loc.path, loc.lineno] for e in entries if (loc := getattr(e, "reprfileloc", None))]
    if frames:
        details["frames"] = frames[-30:]
    return details


class PartSelector:
    """Keeps the tests of this process's part: its shard of the plan, or a list of ids, and in a
    shard that splits by file only the items of its own files.

    Registered only inside a part of a noxlib run. It selects after every other plugin has
    deselected (``-k``, ``-m``, groups), so shards balance exactly the tests that will run. What
    the process will really run is written to ``share.jsonl`` once collection is finished,
    after plugins that deselect or reorder last (``--lf``, ``--sw``, ``--ff``): the run's books
    expect a result for each of those ids.
    """

    def __init__(
        self, part: PartFiles, env: Mapping[str, str], files: FileShare | None = None
    ) -> None:
        self.part = part
        self.env = env
        self.files = files
        self.event: dict[str, object] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from noxlib import parts
        from noxlib.durations import file_of

        dropped = []
        if self.files is not None:
            # Items, not only paths: pytest never asks pytest_ignore_collect about the paths
            # named on its command line, nor about the modules that hold shared fixtures.
            owns = self.files.owns
            dropped = [item for item in items if not owns(file_of(item.nodeid))]
            items[:] = [item for item in items if owns(file_of(item.nodeid))]
        ids = [item.nodeid for item in items]
        keep, event = parts.choose(self.part, ids, self.env, str(config.rootpath))
        if self.files is not None:  # what it collected is already its share, or the CI shard's
            event["how"] = "files" if event["how"] == "all" else "files, then shard"
            later = event.get("plans")
            event["plans"] = [*self.files.plans, *(later if isinstance(later, list) else [])]
        dropped += [item for item in items if item.nodeid not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid in keep]
        self.event = event

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        ids = [item.nodeid for item in session.items]
        if session.config.option.collectonly:  # listed, not run: the books expect nothing
            from noxlib.idfile import write_ids

            write_ids(self.part.listed, ids)
            ids = []
        self.part.write_share(ids, {**self.event, "count": len(ids)})

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Why tests of the share may not have run: -x, --maxfail, a batch stopped, Ctrl-C.
        stopped = session.shouldfail or session.shouldstop
        event: dict[str, object] = {"event": "finished", "exitstatus": int(exitstatus)}
        if stopped:
            event["stopped"] = str(stopped)
        self.part.event(event)


class XdistCollection:
    """On an xdist controller: the ids its workers collected are the part's collection and its
    share (workers run every collected test), for the run's books."""

    def __init__(self, part: PartFiles, root: str) -> None:
        self.part = part
        self.root = root  # pytest's rootdir, written portably in the collection's digest
        self.seen = False

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.seen:
            return  # xdist itself stops the run when workers collect differently
        self.seen = True
        self.part.write_collected(ids, time.monotonic() - _LOADED, self.root)
        self.part.write_share(ids, {"event": "selected", "how": "xdist", "count": len(ids)})


class FileFilter:
    """In a shard that splits by file: pytest collects only this shard's files (directories,
    conftest.py and __init__.py are collected everywhere)."""

    def __init__(self, share: FileShare) -> None:
        self.share = share

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if collection_path.is_dir():
            return None
        try:
            path = collection_path.relative_to(config.rootpath).as_posix()
        except ValueError:
            return None  # outside the rootdir: not a file of the plan
        # None, not False: False would overrule the user's own --ignore and collect_ignore.
        return None if self.share.collects(path) else True


class TimerNotes:
    """Notes the start of each test that runs under pytest-timeout's thread method, with its
    limit, in the part's meta file: that method ends the process without a report, and the
    note is how the engine (or the xdist controller) tells its death from a crash.

    Registered only when pytest-timeout is loaded; tests under the signal method, or without
    a timeout, cost nothing.
    """

    def __init__(self, part: PartFiles) -> None:
        self.part = part

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> None:
        from noxlib.timeouts import THREAD_METHOD, timer_event

        if getattr(settings, "method", None) == THREAD_METHOD:
            event = timer_event(item.nodeid, THREAD_METHOD, float(settings.timeout), time.time())
            self.part.event(event)
        # None: pytest-timeout's own implementation (firstresult) still starts the timer.


class ShardIdentity:
    """In a shard process, xdist's ``worker_id`` and ``testrun_uid`` fixtures answer as they
    would in an xdist worker (``gw0``, ``gw1``, ...; one id for the whole run), so suites that
    give each worker its own database or folder keep doing so."""

    def __init__(self, worker: str, run_uid: str) -> None:
        self.worker = worker
        self.run_uid = run_uid

    @pytest.fixture(scope="session")
    def worker_id(self) -> str:
        return self.worker

    @pytest.fixture(scope="session")
    def testrun_uid(self) -> str:
        return self.run_uid


class _Interrupts:
    """The first SIGINT or SIGTERM unwinds the run like Ctrl-C; later ones are ignored so that
    fixture teardown (stopping servers, saving coverage) is not cut short."""

    def __init__(self) -> None:
        self.received = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received = True
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handle)


def _in_noxlib_run() -> bool:
    return bool(os.environ.get(RUN_DIR_ENV))


def _selected_groups() -> dict[str, list[str]]:
    from noxlib.plan import GROUPS_ENV  # inside a noxlib run only: pytest alone never pays

    try:
        groups = json.loads(os.environ.get(GROUPS_ENV, "{}"))
    except ValueError:
        return {}
    return groups if isinstance(groups, dict) else {}


_PART_KEY = pytest.StashKey["PartFiles"]()
_BATCH_KEY = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    if not _in_noxlib_run():
        return
    from noxlib.plan import group_marker

    for name in _selected_groups():
        config.addinivalue_line("markers", f"{group_marker(name)}: test of noxlib group {name}")
    _Interrupts().install()
    from noxlib.parts import PartFiles

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: its controller records and selects
        # It runs the tests, though: the controller names the part folder for its timer notes,
        # and hands on what the run leaves out, runs first and records as contexts.
        worker_part = workerinput.get(WORKER_PART_KEY)
        if worker_part:
            _note_timers(config, PartFiles(Path(worker_part)))
        _order_and_contexts(config, workerinput.get(WORKER_SETTINGS_KEY, {}))
        return
    from noxlib.parts import (
        BATCH_ENV,
        FILE_SHARE_ENV,
        PART_DIR_ENV,
        WORKER_SETTINGS,
        take_part_env,
    )
    from noxlib.reaping.runs import PART_NAME_ENV

    # This process's part, and no child's: a pytest that a test starts must not pick a shard
    # or write into this part's results.
    own = take_part_env(os.environ)
    config.stash[_BATCH_KEY] = bool(own.get(BATCH_ENV))
    settings = {key: own[key] for key in WORKER_SETTINGS if key in own}
    _order_and_contexts(config, settings)
    part_dir = own.get(PART_DIR_ENV)
    if not part_dir:
        return
    part = PartFiles(Path(part_dir))
    name = os.environ.get(PART_NAME_ENV, "")
    config.pluginmanager.register(ResultsRecorder(part.results, name, part), "noxlib-results")
    files = None
    if own.get(FILE_SHARE_ENV):
        from noxlib.byfile import FileShare

        files = FileShare.read(Path(own[FILE_SHARE_ENV]))
        config.pluginmanager.register(FileFilter(files), "noxlib-file-filter")
    config.pluginmanager.register(PartSelector(part, own, files), "noxlib-part")
    _note_timers(config, part)
    if config.pluginmanager.hasplugin("xdist"):  # its hooks exist only when xdist is loaded
        config.pluginmanager.register(WorkerPart(part_dir, settings), "noxlib-worker-part")
        if getattr(config.option, "numprocesses", None):  # a controller: workers collect
            config.pluginmanager.register(
                XdistCollection(part, str(config.rootpath)), "noxlib-xdist-collection"
            )
    worker = os.environ.get(WORKER_ENV)
    if worker:
        identity = ShardIdentity(worker, os.environ.get(RUN_ID_ENV, ""))
        config.pluginmanager.register(identity, "noxlib-shard-identity")
    config.stash[_PART_KEY] = part


WORKER_PART_KEY = "noxlib_part_dir"
WORKER_SETTINGS_KEY = "noxlib_run_settings"


class WorkerPart:
    """On an xdist controller: tells each worker its part's folder and the run's settings for
    the tests (the part variables are taken out of the environment, so that no child process
    writes into the part)."""

    def __init__(self, part_dir: str, settings: Mapping[str, str]) -> None:
        self.part_dir = part_dir
        self.settings = dict(settings)

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_PART_KEY] = self.part_dir
        node.workerinput[WORKER_SETTINGS_KEY] = self.settings


# --- --affected: leave out what a change cannot reach, last failures first, the map's contexts


class RunOrder:
    """Leaves out the tests ``--affected`` found the change cannot reach, and puts the tests
    that failed in the last run of the session first.

    Every process that collects applies the same lists to the same items, so shards plan from
    the same tests, and xdist workers agree on their collection. It runs before the shard
    selector (trylast), which keeps the order it finds.
    """

    def __init__(self, skip: set[str], first: set[str]) -> None:
        self.skip = skip
        self.first = first

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from noxlib.affected import run_first

        if self.skip:
            dropped = [item for item in items if item.nodeid in self.skip]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = [item for item in items if item.nodeid not in self.skip]
        if self.first:
            order = run_first([item.nodeid for item in items], self.first)
            items[:] = [items[i] for i in order]


class TestContexts:
    """Records each test as a coverage context named by its node id (setup, call and teardown),
    from which the ``ci`` session builds the ``--affected`` map. Lines run outside any test
    (import time, collection) keep coverage's empty context."""

    __test__ = False  # not a pytest test class

    def __init__(self, cov: Any) -> None:
        self.cov = cov

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.cov.switch_context(item.nodeid)


def _order_and_contexts(config: pytest.Config, settings: Mapping[str, str]) -> None:
    from noxlib.idfile import read_ids
    from noxlib.parts import CONTEXTS_ENV, FIRST_ENV, SKIP_ENV

    skip = set(read_ids(Path(settings[SKIP_ENV]))) if settings.get(SKIP_ENV) else set()
    first = set(read_ids(Path(settings[FIRST_ENV]))) if settings.get(FIRST_ENV) else set()
    if skip or first:
        config.pluginmanager.register(RunOrder(skip, first), "noxlib-run-order")
    if settings.get(CONTEXTS_ENV):
        cov = _running_coverage()
        if cov is not None:
            config.pluginmanager.register(TestContexts(cov), "noxlib-test-contexts")


def _running_coverage() -> Any:
    """The coverage measuring this process (``coverage run``, or its subprocess patch in an
    xdist worker), or None."""
    try:
        import coverage
    except ImportError:
        return None
    return coverage.Coverage.current()


def _note_timers(config: pytest.Config, part: PartFiles) -> None:
    if config.pluginmanager.hasplugin("timeout"):
        config.pluginmanager.register(TimerNotes(part), "noxlib-timer-notes")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the group markers must be on the items before pytest's own -m deselection, and
    # what was collected is noted before anything is deselected (the durations file forgets
    # tests a run no longer collects).
    if not _in_noxlib_run():
        return
    from noxlib.plan import group_marker

    for name, roots in _selected_groups().items():
        marker = group_marker(name)
        for item in items:
            if any(_is_under(item.path, root) for root in roots):
                item.add_marker(marker)
    part = config.stash.get(_PART_KEY, None)
    if part is not None:
        ids = [item.nodeid for item in items]
        part.write_collected(ids, time.monotonic() - _LOADED, str(config.rootpath))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Take what collection built (items, modules, fixtures' definitions: they live until the
    end) out of the garbage collector's rounds. With tens of thousands of items, every later
    full collection walks them all; frozen, they are not walked again. A round first frees the
    garbage collection made, so nothing but live objects is frozen."""
    from noxlib.parts import GC_FREEZE_ENV

    if _in_noxlib_run() and os.environ.get(GC_FREEZE_ENV) == "1":
        import gc

        gc.collect()
        gc.freeze()


def _is_under(path: Path, root: str) -> bool:
    return path == Path(root) or Path(root) in path.parents


# --- reaping: public API for tests to record the processes they start ----------------


def record_process(pid: int, *, port: int | None = None, name: str | None = None) -> None:
    """Record process ``pid``, started by a test, in the ledger of the current noxlib run.

    Every process a run starts carries the run id in its environment and is reaped by it;
    call this for one that drops its environment (``env -i``, some daemons) so that it is
    reaped too, even after pytest is killed. ``port`` and ``name`` are shown in the reaping
    log. A no-op outside a noxlib run (``NOXLIB_RUN_DIR`` unset).
    """
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    from noxlib import reaping  # psutil only when a test records a process

    reaping.record_process(Path(run_dir), pid, port=port, name=name)


# --- end of reaping ------------------------------------------------------------------------------


# --- servers: the noxlib_servers fixture and the hooks that watch its servers --------------------
# Mechanics live below the pytest boundary (the noxlib.servers package); here only what needs
# pytest: which test used which server, restarts before a test, report sections and terminal
# lines.

SERVERS_SECTION = "noxlib servers"
SERVERS_PROPERTY = "noxlib-servers"  # user_properties key: one headline per event (JUnit too)


@pytest.fixture(scope="session")
def noxlib_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerManager]:
    """Managed servers: ``noxlib_servers.start(name, argv, ready="tcp", ...)`` returns a ready
    server; dead ones are restarted before the next test using them; all stop at session end.
    See docs/servers.md."""
    # Imported here, not at the top: suites without servers never pay for it (psutil included).
    from noxlib.servers import ServerError, ServerManager

    config = request.config
    base_dir, shared_dir = _server_folders(config, tmp_path_factory)
    run_dir = os.environ.get(RUN_DIR_ENV)
    batch = config.stash.get(_BATCH_KEY, False)
    manager = ServerManager(
        base_dir,
        shared_dir=shared_dir,
        run_dir=Path(run_dir) if run_dir else None,
        keep_shared=batch,
    )
    watch = ServerWatch(config.stash.get(_PART_KEY, None), batch=batch)
    config.pluginmanager.register(watch, "noxlib-server-watch")
    try:
        yield manager
    finally:
        config.pluginmanager.unregister(watch)
        errors = manager.stop_all()
        if errors:
            raise ServerError("\n".join(errors))


def _server_folders(config: pytest.Config, factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Where servers keep their folders: (this process's, the ones shared by the run's workers).

    Inside a noxlib run, the run folder (reaped and deleted with the run): shared servers are
    shared by every process of the run, xdist workers and shards alike. Else pytest's temp
    folder; under xdist the controller's one is the parent of each worker's, unique per run.
    """
    workerinput = getattr(config, "workerinput", None)
    # A shard process is no xdist worker, but has a worker name of its own (gw0, gw1, ...).
    worker = workerinput["workerid"] if workerinput else os.environ.get(WORKER_ENV, "main")
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        root = Path(run_dir) / "servers"
        return root / worker, root / "shared"
    base = factory.mktemp("noxlib-servers")
    if workerinput:
        return base, factory.getbasetemp().parent / "noxlib-shared-servers"
    return base, base / "shared"


def _servers_in(item: pytest.Item) -> dict[str, Server]:
    """The servers among the fixture values of ``item`` (its whole closure), by fixture name."""
    from noxlib.servers import Server  # loaded already: this runs only while servers exist

    funcargs: dict[str, object] = getattr(item, "funcargs", None) or {}
    return {name: value for name, value in funcargs.items() if isinstance(value, Server)}


class ServerWatch:
    """Registered while ``noxlib_servers`` lives: checks the servers a test uses before and
    after it, restarts dead ones (or errors with ``respawn=False``) and says so in the report."""

    def __init__(self, part: PartFiles | None = None, *, batch: bool = False) -> None:
        self.part = part  # where the part's server events go, for the batch's check line
        self.batch = batch  # in a batch, a server that cannot start ends the batch at once
        self.by_fixture: dict[str, Server] = {}  # learnt from funcargs of earlier tests
        self.found_dead: dict[str, str] = {}  # server name -> "during <test>"
        self.last_user: dict[str, str] = {}  # server name -> last test it was alive after
        self.events: dict[str, list[tuple[str, str]]] = {}  # nodeid -> (headline, details)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        # Before fixtures: revive what earlier tests showed this one will use, so that its
        # function fixtures talk to a live server. After: anything newly seen in funcargs.
        names: list[str] = getattr(item, "fixturenames", [])
        known = [self.by_fixture[name] for name in names if name in self.by_fixture]
        self._revive(item, known)
        yield
        servers = _servers_in(item)
        self.by_fixture.update(servers)
        self._revive(item, list(servers.values()))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        from noxlib.servers import ServerError, tail_block

        report = yield
        servers = _servers_in(item)
        # Here, not in setup: this plugin is registered during the first test's setup.
        for server in servers.values():
            if server.found_dead:  # a shared server an earlier batch left dead
                self._note(server.name, "restarted", f"{server.found_dead} before {item.nodeid}")
                server.found_dead = None
        if report.when == "call":
            self._check_after(item, servers)
        if call.excinfo is not None and call.excinfo.errisinstance(ServerError):
            self._unrecoverable(item, str(call.excinfo.value))
        for headline, details in self.events.pop(item.nodeid, []):
            report.sections.append((SERVERS_SECTION, f"{headline}\n{details}"))
        if report.failed:
            for name, server in servers.items():
                title = f"noxlib server '{server.name}' (fixture {name}) log"
                report.sections.append((title, tail_block(server.log_path, server.log_tail())))
        return report

    def _revive(self, item: pytest.Item, servers: list[Server]) -> None:
        from noxlib.servers import ServerDiedError, tail_block

        for server in dict.fromkeys(servers):
            death = server.death()
            if death is None:
                continue
            where = self.found_dead.pop(server.name, None) or self._since(server.name)
            tail = tail_block(server.log_path, server.log_tail())
            if not server.spec.respawn:
                raise ServerDiedError(
                    f"server '{server.name}' {death} {where}; not restarted for "
                    f"{item.nodeid} because respawn=False.\n{tail}"
                )
            if server.ensure_alive() is not None:
                headline = f"server '{server.name}' {death} {where}; restarted for {item.nodeid}"
                self._event(item, headline, tail)
                self._note(server.name, "restarted", f"{death} {where}")

    def _since(self, name: str) -> str:
        last = self.last_user.get(name)
        return f"after {last}" if last else "before its first test"

    def _check_after(self, item: pytest.Item, servers: dict[str, Server]) -> None:
        from noxlib.servers import tail_block

        for server in servers.values():
            death = server.death()
            if death is None:
                self.last_user[server.name] = item.nodeid
                continue
            self.found_dead[server.name] = f"during {item.nodeid}"
            self._note(server.name, "died", f"{death} during {item.nodeid}")
            headline = f"server '{server.name}' {death} during {item.nodeid}"
            self._event(item, headline, tail_block(server.log_path, server.log_tail()))

    def _note(self, server: str, what: str, why: str) -> None:
        """Tell the engine (the part's events) what happened to a server in this part."""
        if self.part is not None:
            self.part.event({"event": "server", "server": server, "what": what, "why": why})

    def _unrecoverable(self, item: pytest.Item, message: str) -> None:
        """A server that cannot be (re)started: a batch stops at once rather than letting each
        later test wait out its timeout."""
        first_line = message.strip().splitlines()[0] if message.strip() else "server error"
        name = re.search(r"server '([^']+)'", first_line)
        self._note(name.group(1) if name else "?", "unrecoverable", first_line)
        if self.batch:
            item.session.shouldstop = f"noxlib: this batch stops: {first_line}"

    def _event(self, item: pytest.Item, headline: str, details: str) -> None:
        # user_properties of the item reach the reports still to be made (and JUnit XML, which
        # reads the teardown report's); the section goes to the report of the current phase.
        item.user_properties.append((SERVERS_PROPERTY, headline))
        self.events.setdefault(item.nodeid, []).append((headline, details))


class ServerNotes:
    """On the process that prints (serial run or xdist controller): the server events found
    in test reports, listed in a section of the terminal summary."""

    def __init__(self) -> None:
        self.headlines: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # it carries every event of its test, each once
            self.headlines += [str(v) for k, v in report.user_properties if k == SERVERS_PROPERTY]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.headlines:
            terminalreporter.section(SERVERS_SECTION, yellow=True)
            for headline in self.headlines:
                terminalreporter.write_line(headline)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        session.config.pluginmanager.register(ServerNotes(), "noxlib-server-notes")
