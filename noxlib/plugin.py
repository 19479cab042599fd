"""The pytest plugin (entry point ``pytest11``): the only module that imports pytest.

Inside a noxlib run (``NOXLIB_RUN_DIR`` set) it marks items by group, records each test's
outcome and duration for the timing report, and turns SIGTERM into a clean interrupt. It offers
``record_process`` (reaping) and the ``noxlib_servers`` fixture (managed servers) in any pytest
run; outside a noxlib run the rest stays out of the way.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from noxlib.plan import GROUPS_ENV, group_marker
from noxlib.reaping import RUN_DIR_ENV

if TYPE_CHECKING:
    from noxlib.servers import Server, ServerManager

RESULTS_FILE = "results.jsonl"


class ResultsRecorder:
    """Appends one JSON line per finished test; a line is written as soon as its test ends,
    so a run killed half-way still reports what it did."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.partial.setdefault(report.nodeid, {"duration": 0.0, "outcome": None})
        entry["duration"] += report.duration
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
            self._write(report, self.partial.pop(report.nodeid))

    def _write(self, report: pytest.TestReport, entry: dict[str, Any]) -> None:
        node = getattr(report, "node", None)  # set by xdist on the controller
        worker = getattr(getattr(node, "gateway", None), "id", "")
        line = {
            "nodeid": report.nodeid,
            "outcome": entry["outcome"] or "passed",
            "duration": round(entry["duration"], 6),
            "worker": worker,
        }
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


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
    try:
        groups = json.loads(os.environ.get(GROUPS_ENV, "{}"))
    except ValueError:
        return {}
    return groups if isinstance(groups, dict) else {}


def pytest_configure(config: pytest.Config) -> None:
    if not _in_noxlib_run():
        return
    for name in _selected_groups():
        config.addinivalue_line("markers", f"{group_marker(name)}: test of noxlib group {name}")
    _Interrupts().install()
    if not hasattr(config, "workerinput"):  # serial run or xdist controller: the one recorder
        recorder = ResultsRecorder(Path(os.environ[RUN_DIR_ENV]) / RESULTS_FILE)
        config.pluginmanager.register(recorder, "noxlib-results")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the group markers must be on the items before pytest's own -m deselection.
    groups = _selected_groups() if _in_noxlib_run() else {}
    for name, roots in groups.items():
        marker = group_marker(name)
        for item in items:
            if any(_is_under(item.path, root) for root in roots):
                item.add_marker(marker)


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
    manager = ServerManager(
        base_dir, shared_dir=shared_dir, run_dir=Path(run_dir) if run_dir else None
    )
    watch = ServerWatch()
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

    Inside a noxlib run, the run folder (reaped and deleted with the run). Else pytest's temp
    folder; under xdist the controller's one is the parent of each worker's, unique per run.
    """
    workerinput = getattr(config, "workerinput", None)
    worker = workerinput["workerid"] if workerinput else "main"
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

    def __init__(self) -> None:
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
        from noxlib.servers import tail_block

        report = yield
        servers = _servers_in(item)
        if report.when == "call":
            self._check_after(item, servers)
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
            headline = f"server '{server.name}' {death} during {item.nodeid}"
            self._event(item, headline, tail_block(server.log_path, server.log_tail()))

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
