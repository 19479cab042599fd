"""The ``noxlib_servers`` fixture and the hooks that watch its servers.

Mechanics live below the pytest boundary (the noxlib.servers package); here only what needs
pytest: which test used which server, restarts before a test, report sections and terminal
lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from noxlib.names import WORKER_ENV
from noxlib.plugin.state import BATCH_KEY, PART_KEY
from noxlib.reaping.runs import RUN_DIR_ENV

if TYPE_CHECKING:
    from noxlib.parts import PartFiles
    from noxlib.servers import Server, ServerManager


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
    batch = config.stash.get(BATCH_KEY, False)
    manager = ServerManager(
        base_dir,
        shared_dir=shared_dir,
        run_dir=Path(run_dir) if run_dir else None,
        keep_shared=batch,
    )
    watch = ServerWatch(config.stash.get(PART_KEY, None), batch=batch)
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
