"""`Server`: one managed server over its life: start (port, spawn, daemon, readiness), death,
respawn, sharing among the workers of a run, stop. `ServerManager` makes them.

Longer than 400 lines, and left so: it is one behaviour, one server's life, whose states
(starting, ready, dead, respawned, shared, stopped) each method moves between."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from noxlib.errors import ServerDiedError, ServerError, ServerStartError
from noxlib.reaping import ledger
from noxlib.reaping.identity import Launch, start_ticks
from noxlib.reaping.processes import describe_exit
from noxlib.reaping.runs import PART_NAME_ENV, RUN_ID_ENV
from noxlib.servers.folders import (
    LOG_TAIL_LINES,
    Folders,
    expand,
    read_tail,
    server_environment,
    tail_block,
)
from noxlib.servers.ports import ADDRESS_IN_USE, HOST, free_port, listeners
from noxlib.servers.probes import asks_port, make_probe
from noxlib.servers.process import ForeignPid, ServerProcess
from noxlib.servers.sharing import SharedServer, SharedServerFile

DEFAULT_GRACE = 5.0
PORT_ATTEMPTS = 3
# How long a port may answer from a process outside the server's tree before we believe it.
FOREIGN_LISTENER_GRACE = 2.0
# How long a pid file may keep naming a process its control script did not make before the
# start fails: a read that catches the file half-written names a wrong pid only for a moment.
FOREIGN_PID_WAIT = 1.0
FIRST_POLL_DELAY = 0.05
MAX_POLL_DELAY = 0.5

Log = Callable[[str], object]
# How readiness is judged: "tcp", "http:/path", "log:<regex>", or a callable(server) -> bool.
Ready = str | Callable[["Server"], bool]

# Popen objects of shared servers this process started but left to other workers: kept
# referenced so that garbage collection never warns "subprocess ... is still running".
_HANDED_OVER: list[subprocess.Popen[bytes]] = []


class _PortTaken(ServerStartError):
    """The server exited because another process took its port first: worth another port."""


def _record_in_ledger(run_dir: Path | None, pid: int, port: int | None, name: str) -> None:
    """Tell reaping about ``pid`` so that the run's end stops it even if it escapes us (drops
    its environment, leaves our process tree) or pytest is killed."""
    if run_dir is None:
        return
    # A control script may already have exited: nothing left to reap then.
    with contextlib.suppress(psutil.NoSuchProcess):
        ledger.record_process(run_dir, pid, port=port, name=name)


@dataclass(frozen=True)
class ServerSpec:
    """How to start a server; the arguments of `ServerManager.start` (see there)."""

    name: str
    argv: tuple[str, ...]
    ready: Ready = "tcp"
    env: Mapping[str, str] = field(default_factory=dict)
    isolate: bool = True
    timeout: float = 30.0
    respawn: bool = True
    shared: bool = False
    daemon: bool = False
    pid_file: str | None = None
    port: int | None = None
    grace: float = DEFAULT_GRACE

    def needs_port(self) -> bool:
        texts = (*self.argv, *self.env.values(), self.pid_file or "")
        return any("{port}" in text for text in texts) or asks_port(self.ready)


class Server:
    """A running server: ``name``, ``port``, ``url``, ``pid``, ``log_path``, its folders, and
    `ensure_alive`, `restart`, `stop`. Made by `ServerManager.start`.

    ``spec`` says how to start it, ``folders`` where its files go, ``run_dir`` is the run folder
    whose ledger records it (None outside a noxlib run), ``log`` receives notes and
    ``pick_port`` gives a free port whenever one is needed.
    """

    def __init__(
        self,
        spec: ServerSpec,
        folders: Folders,
        *,
        run_dir: Path | None,
        log: Log,
        pick_port: Callable[[], int] = free_port,
        keep_shared: bool = False,
    ) -> None:
        self.spec = spec
        self.keep_shared = keep_shared
        # How the shared server this one joined had ended, when it was found dead and started
        # again (a batch after the one that killed it); read once by the plugin.
        self.found_dead: str | None = None
        self.pick_port = pick_port
        self.name = spec.name
        self.folders = folders.create()
        self.run_dir = run_dir
        self.log = log
        self.log_offset = 0
        self.started_argv: list[str] = []  # the last argv launched, placeholders filled in
        self.port: int | None = spec.port
        self._process: ServerProcess | None = None
        self._launcher: subprocess.Popen[bytes] | None = None
        self._shared = SharedServerFile(folders.root) if spec.shared else None
        self._stopped = False

    def __repr__(self) -> str:
        return f"<Server {self.name!r} pid={self.pid} port={self.port} log={self.log_path}>"

    # what tests read

    @property
    def url(self) -> str | None:
        """``http://127.0.0.1:<port>`` when the server has a port, else None."""
        return f"http://{HOST}:{self.port}" if self.port is not None else None

    @property
    def pid(self) -> int | None:
        """The server's pid (for a daemon, the one from its pid file); None when not running."""
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.folders.log

    @property
    def home(self) -> Path:
        return self.folders.home

    @property
    def tmp(self) -> Path:
        return self.folders.tmp

    @property
    def pid_file(self) -> Path:
        template = self.spec.pid_file or str(self.folders.root / "server.pid")
        return Path(expand(template, self._placeholders()))

    def port_or_fail(self) -> int:
        if self.port is None:
            raise ServerError(f"server '{self.name}' has no port: put '{{port}}' in its argv")
        return self.port

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def death(self) -> str | None:
        """How the server ended ("died with SIGABRT (exit code -6)"), or None while it runs."""
        if self._stopped:
            return "was stopped"
        if self._process is None:
            return "never started"
        return None if self._process.alive() else self._process.exit_description()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines its current process wrote."""
        return read_tail(self.log_path, start=self.log_offset, lines=lines)

    # what tests and the plugin do

    def ensure_alive(self) -> str | None:
        """Restart the server if it died; return how it had died, or None when it was alive.

        Raises ServerDiedError with the reason and the log tail when ``respawn=False``.
        """
        with self._locked():
            if self._shared is not None and self._adopt_shared():
                return None  # alive, or already restarted by another worker
            if self._shared is None and self.alive():
                return None
            death = self._check_respawn()
            self._relaunch()
            return death

    def restart(self) -> Server:
        """Stop the server if it runs and start it again, on the same port when still free."""
        with self._locked():
            self._relaunch()
        return self

    def _relaunch(self) -> None:
        self._end_current()
        self._stopped = False
        self._launch()
        if self._shared is not None:
            self._publish_shared()

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """The shared server file's lock for a shared server; nothing to lock for a private one."""
        return self._shared.locked() if self._shared is not None else contextlib.nullcontext()

    def stop(self) -> None:
        """Stop the server (SIGTERM, grace, SIGKILL). A shared one stops with its last user."""
        if self._stopped:
            return
        self._stopped = True
        if self._shared is None:
            self._end_current()
            return
        with self._shared.locked():
            if self._shared.leave() or self.keep_shared:
                self._hand_over()
                return
            self._end_current()
            self._shared.clear()

    # starting

    def start_or_join(self) -> Server:
        """Start the server; a shared one only if no worker of the run has it running."""
        if self._shared is None:
            self._launch()
            return self
        with self._shared.locked():
            published = self._shared.read_server()
            if not self._adopt_shared():
                if published is not None:
                    self.found_dead = f"was found dead (pid {published.pid} had ended)"
                self._launch()
            self._publish_shared()
        return self

    def _launch(self) -> None:
        """Start and wait until ready, retrying with another port after EADDRINUSE."""
        wants_port = self.spec.needs_port() and self.spec.port is None
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if wants_port and (self.port is None or attempt > 1):
                self.port = self.pick_port()
            try:
                self._start_once()
                return
            except _PortTaken:
                if not wants_port or attempt == PORT_ATTEMPTS:
                    raise
                self.log(f"noxlib: server '{self.name}' lost port {self.port}; trying another")

    def _start_once(self) -> None:
        deadline = time.monotonic() + self.spec.timeout
        popen, launch = self._spawn()
        try:
            if self.spec.daemon:
                self._launcher = popen
                self._process = self._await_daemon(popen, launch, deadline)
                # The daemon left our tree and may have dropped the run's environment.
                _record_in_ledger(self.run_dir, self._process.pid, self.port, self.name)
            else:
                self._process = ServerProcess(popen.pid, popen)
            self._wait_ready(self._process, deadline)
        except BaseException:
            self._end_current()
            raise

    def _placeholders(self) -> dict[str, str]:
        values = {"home": str(self.folders.home), "tmp": str(self.folders.tmp)}
        if self.port is not None:
            values["port"] = str(self.port)
        return values

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Launch]:
        values = self._placeholders()
        if self.spec.daemon:
            values["pid_file"] = str(self.pid_file)
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()  # a stale pid file would name the previous process
        argv = [expand(arg, values) for arg in self.spec.argv]
        self.started_argv = argv
        env = server_environment(
            os.environ, self.folders, self.spec.env, values, isolate=self.spec.isolate
        )
        if self._shared is not None:
            # The run's server, not one part's: a batch's leftover sweep must not end it.
            env.pop(PART_NAME_ENV, None)
        with self.log_path.open("ab") as log:
            log.write(f"=== noxlib: starting server '{self.name}': {argv} ===\n".encode())
            log.flush()
            self.log_offset = log.tell()
            before = time.time()
            try:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.folders.cwd if self.spec.isolate else None,
                    env=env,
                )
            except OSError as exc:
                raise ServerStartError(
                    f"server '{self.name}' could not be started: {exc} (argv {argv})"
                ) from exc
        # At once: if pytest is killed while the server starts, reaping still knows it.
        _record_in_ledger(self.run_dir, popen.pid, self.port, self.name)
        return popen, Launch(start_ticks(popen.pid), before, env.get(RUN_ID_ENV))

    def _await_daemon(
        self, launcher: subprocess.Popen[bytes], launch: Launch, deadline: float
    ) -> ServerProcess:
        """The daemon's process, from the pid file its control script (``launcher``, started
        as ``launch``) writes; only a process the script made is adopted."""
        refused: ForeignPid | None = None
        refused_since = 0.0
        for delay in _poll_delays():
            try:
                found = ServerProcess.from_pid_file(self.pid_file, launch)
            except ForeignPid as exc:
                found = None
                if refused is None or refused.pid != exc.pid:
                    refused_since = time.monotonic()
                refused = exc
                if time.monotonic() - refused_since >= FOREIGN_PID_WAIT:
                    raise self._refused_error(exc) from None
            else:
                refused = None
            if found is not None:
                return found
            code = launcher.poll()
            if code not in (None, 0):
                raise self._start_error(f"its control script {describe_exit(code)}")
            if time.monotonic() >= deadline:
                if refused is not None:
                    raise self._refused_error(refused)
                state = "exited" if code == 0 else "is still running"
                raise self._start_error(
                    f"its pid file {self.pid_file} named no live process after "
                    f"{self.spec.timeout:g} s (the control script {state})"
                )
            time.sleep(delay)
        raise AssertionError("unreachable: _poll_delays never ends")

    def _wait_ready(self, process: ServerProcess, deadline: float) -> None:
        probe = make_probe(self.spec.ready, self)
        foreign_since = 0.0
        for delay in _poll_delays():
            if not process.alive():
                raise self._exited_error(process)
            if self._launcher is not None and self._launcher.poll() not in (None, 0):
                raise self._start_error(
                    f"its control script {describe_exit(self._launcher.returncode)}"
                )
            ready, seen = probe()
            if ready and not self._answered_by(process):
                # Maybe the process that won the race for our port: ours then exits with
                # EADDRINUSE and is retried. A listener that stays foreign while ours lives
                # (a container's port proxy) is accepted after a while.
                foreign_since = foreign_since or time.monotonic()
                ready = time.monotonic() - foreign_since >= FOREIGN_LISTENER_GRACE
                seen = f"port {self.port} answered, but another process listens on it"
            if ready and process.alive():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._start_error(
                    f"was not ready after {self.spec.timeout:g} s "
                    f"(ready={self.spec.ready!r}; last check: {seen})"
                )
            time.sleep(min(delay, remaining))

    def _answered_by(self, process: ServerProcess) -> bool:
        """Whether the port probes reached ``process`` (or its children), as far as we can tell.

        Only tcp and http readiness ask the port; a listener we cannot see (another user's
        process) gets the benefit of the doubt.
        """
        if not asks_port(self.spec.ready) or self.port is None:
            return True
        found = listeners(self.port)
        return not found or bool(found & process.family_pids())

    def _exited_error(self, process: ServerProcess) -> ServerStartError:
        process.end(0)  # reap it, so the exit code is known
        how = process.exit_description()
        error = self._start_error(f"exited before it was ready: {how}")
        taken = self.port is not None and ADDRESS_IN_USE.search(self.log_tail())
        return _PortTaken(str(error)) if taken else error

    def _refused_error(self, refused: ForeignPid) -> ServerStartError:
        return self._start_error(
            f"refused pid {refused.pid} named by its pid file {self.pid_file}: {refused.why}. "
            "A daemon is adopted only when proven to be one its control script started, since "
            "noxlib records it for reaping and stops it with all its children"
        )

    def _start_error(self, what: str) -> ServerStartError:
        # The argv as it ran and where: a relative path that worked in the test's folder fails
        # in the server's own working folder (isolate=True), and this shows why at a glance.
        argv = shlex.join(self.started_argv or self.spec.argv)
        cwd = self.folders.cwd if self.spec.isolate else Path.cwd()
        return ServerStartError(
            f"server '{self.name}' {what}.\n  argv: {argv}\n  cwd: {cwd}\n  port: {self.port}\n"
            + tail_block(self.log_path, self.log_tail())
        )

    def _check_respawn(self) -> str:
        death = self.death() or "died"
        if not self.spec.respawn:
            raise ServerDiedError(
                f"server '{self.name}' {death} and respawn=False: not restarted.\n"
                + tail_block(self.log_path, self.log_tail())
            )
        return death

    # stopping

    def _end_current(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            how = process.end(self.spec.grace)
            with contextlib.suppress(OSError), self.log_path.open("a", encoding="utf-8") as log:
                log.write(f"=== noxlib: server '{self.name}' {how} ===\n")
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            ServerProcess(launcher.pid, launcher).end(self.spec.grace)

    def _hand_over(self) -> None:
        """Leave a shared server running for the other workers, without waiting for it."""
        process, self._process = self._process, None
        if process is not None and process.popen is not None:
            _HANDED_OVER.append(process.popen)
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            _HANDED_OVER.append(launcher)

    # sharing (called with the shared server file locked)

    def _adopt_shared(self) -> bool:
        """Use the shared server if one runs (maybe restarted by another worker)."""
        assert self._shared is not None
        shared = self._shared.read_server()
        if shared is None:
            return False
        if self._process is not None and self._process.pid == shared.pid and self.alive():
            return True
        found = ServerProcess.find(shared.pid, shared.create_time)
        if found is None:
            return False
        self._process, self.port = found, shared.port
        self.log_offset = shared.log_offset
        return True

    def _publish_shared(self) -> None:
        assert self._shared is not None
        assert self._process is not None
        self._shared.publish(
            SharedServer(self._process.pid, self._process.create_time(), self.port, self.log_offset)
        )


def _poll_delays() -> Iterator[float]:
    """Pauses between checks of a starting server: short at first, when most servers become
    ready, then longer so a slow one does not cost a core."""
    delay = FIRST_POLL_DELAY
    while True:
        yield delay
        delay = min(delay * 1.5, MAX_POLL_DELAY)
