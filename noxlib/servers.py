"""Managed server processes for tests: port, isolation, readiness, logs, death and respawn.

Pure mechanics, importing neither pytest nor nox: the pytest plugin's ``noxlib_servers``
fixture is a `ServerManager` and adds only what needs pytest (which test used which server,
report sections, terminal lines). A server here is:

- started from an argv template whose ``{port}``, ``{home}``, ``{tmp}`` and ``{pid_file}`` are
  filled in; a port lost to a race (EADDRINUSE at startup) is retried with another one;
- given its own HOME, TMPDIR, XDG_* folders and working directory (``isolate=True``), while
  keeping the run's ``NOXLIB_RUN_ID`` so reaping still recognises it;
- writing stdout and stderr to its own log file, whose tail every error message carries;
- polled for readiness (tcp, http, a log line, or a callable) with backoff until a timeout;
- described by exit code and signal *name* when it dies, restarted on demand, and stopped by
  SIGTERM, a grace period, then SIGKILL;
- optionally a daemon (its control script forks, the real pid comes from a pid file) and
  optionally shared by the xdist workers of one run (a file lock and a list of users).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from noxlib.errors import NoxlibError
from noxlib.runs import RUN_DIR_ENV, RUN_ID_ENV

HOST = "127.0.0.1"
LOG_TAIL_LINES = 40
DEFAULT_GRACE = 5.0
# After SIGKILL a process is gone as soon as the kernel tears it down; this only bounds a wait.
KILL_WAIT = 5.0
PORT_ATTEMPTS = 3
PROBE_TIMEOUT = 2.0
# How long a port may answer from a process outside the server's tree before we believe it.
FOREIGN_LISTENER_GRACE = 2.0
FIRST_POLL_DELAY = 0.05
MAX_POLL_DELAY = 0.5
LOG_FILE = "server.log"
# How servers of the main languages say "someone else has this port" before exiting.
ADDRESS_IN_USE = re.compile(
    r"address already in use|EADDRINUSE|errno 98\b|errno 48\b|port .* (?:is )?(?:already )?in use",
    re.IGNORECASE,
)
XDG_FOLDERS = {
    "XDG_CONFIG_HOME": "xdg-config",
    "XDG_CACHE_HOME": "xdg-cache",
    "XDG_DATA_HOME": "xdg-data",
    "XDG_STATE_HOME": "xdg-state",
    "XDG_RUNTIME_DIR": "xdg-runtime",
}

Ready = str | Callable[["Server"], bool]
Probe = Callable[[], tuple[bool, str]]
Log = Callable[[str], object]

# Popen objects of shared servers this process started but left to other workers: kept
# referenced so that garbage collection never warns "subprocess ... is still running".
_HANDED_OVER: list[subprocess.Popen[bytes]] = []


class ServerError(NoxlibError):
    """A managed server could not start, died, or was used wrongly."""


class ServerStartError(ServerError):
    """A server exited before it was ready, or was not ready in time."""


class ServerDiedError(ServerError):
    """A server died and ``respawn=False`` forbids starting it again."""


class _PortTaken(ServerStartError):
    """The server exited because another process took its port first: worth another port."""


# --- small mechanics -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def describe_exit(returncode: int) -> str:
    """Say how a process with ``returncode`` (as Popen reports it) ended, signals by name."""
    if returncode < 0:
        return f"died with {_signal_name(-returncode)} (exit code {returncode})"
    if returncode > 128 and _signal_name(returncode - 128)[:3] == "SIG":
        # Shells report a child killed by signal N as 128 + N.
        return (
            f"exited with code {returncode} "
            f"(a shell's way of saying {_signal_name(returncode - 128)})"
        )
    return f"exited with code {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def read_tail(path: Path, *, start: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the file at ``path``, reading from byte offset ``start``."""
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def tail_block(path: Path, text: str) -> str:
    """``text`` (a log tail) framed so that it stands out inside an error message."""
    body = text if text.strip() else "(the log is empty)"
    return f"--- last {LOG_TAIL_LINES} lines of {path} ---\n{body}\n--- end of {path.name} ---"


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace the known ``{placeholders}`` of ``template`` by ``values``.

    Not ``str.format``: argv items often hold braces of their own (JSON, shell code).
    """
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _record_in_ledger(run_dir: Path | None, pid: int, port: int | None, name: str) -> None:
    """Tell reaping about ``pid`` so that the run's end stops it even if it escapes us (drops
    its environment, leaves our process tree) or pytest is killed."""
    if run_dir is None:
        return
    from noxlib import reaping

    # A control script may already have exited: nothing left to reap then.
    with contextlib.suppress(psutil.NoSuchProcess):
        reaping.record_process(run_dir, pid, port=port, name=name)


# --- folders and environment -----------------------------------------------------------------


@dataclass(frozen=True)
class Folders:
    """A server's own folders under ``root``: log, HOME, TMPDIR, XDG_* and working directory."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    def create(self) -> Folders:
        for folder in (self.home, self.tmp, self.cwd):
            folder.mkdir(parents=True, exist_ok=True)
        for name in XDG_FOLDERS.values():
            # 0700: XDG_RUNTIME_DIR must be private or programs refuse it.
            (self.root / name).mkdir(mode=0o700, exist_ok=True)
        return self

    def isolated_env(self) -> dict[str, str]:
        """The variables that make a process keep its files to itself."""
        env = {"HOME": str(self.home), "TMPDIR": str(self.tmp), "TMP": str(self.tmp)}
        env["TEMP"] = str(self.tmp)
        env.update({key: str(self.root / name) for key, name in XDG_FOLDERS.items()})
        return env


def server_environment(
    base: Mapping[str, str],
    folders: Folders,
    extra: Mapping[str, str],
    values: Mapping[str, str],
    *,
    isolate: bool,
) -> dict[str, str]:
    """The environment of a server: ``base`` (usually os.environ), the isolation variables when
    ``isolate``, then ``extra`` with its placeholders filled from ``values``.

    The run's identity variables always come from ``base``: reaping matches them, so a server
    must not lose them by accident.
    """
    env = dict(base)
    if isolate:
        env.update(folders.isolated_env())
    env.update({key: expand(value, values) for key, value in extra.items()})
    for key in (RUN_ID_ENV, RUN_DIR_ENV):
        if key in base:
            env[key] = base[key]
    return env


# --- one incarnation of a server ---------------------------------------------------------------


class _Process:
    """One incarnation of a server: our child (``popen``) or a process we only know by pid."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.popen = popen
        try:
            self.proc: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self.proc = None

    @classmethod
    def known(cls, pid: int, create_time: float) -> _Process | None:
        """The process ``pid`` if it is still the one created at ``create_time``."""
        found = cls(pid)
        if found.proc is None or not found.alive():
            return None
        with contextlib.suppress(psutil.Error):
            if abs(found.proc.create_time() - create_time) < 0.01:
                return found
        return None

    def create_time(self) -> float:
        if self.proc is None:
            return 0.0
        try:
            return float(self.proc.create_time())
        except psutil.Error:
            return 0.0

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        if self.proc is None:
            return False
        try:
            # A zombie has exited; it only waits for its parent (maybe another worker) to reap it.
            return bool(self.proc.is_running() and self.proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def exit_description(self) -> str:
        if self.popen is not None and self.popen.returncode is not None:
            return describe_exit(self.popen.returncode)
        return "exited (exit status unknown: it is not a child of this process)"

    def end(self, grace: float) -> str:
        """Stop the process and its descendants: SIGTERM, ``grace`` seconds, then SIGKILL.

        All of them get the signals, the way a terminal's Ctrl-C reaches a whole process group:
        a shell wrapper that dies alone would leave the real server running. Returns how it
        ended, for logs.
        """
        family = self._family()
        if not family:
            self._reap()
            return "already gone"
        _signal_all(family, signal.SIGTERM)
        alive = _wait_gone(family, grace, self.popen)
        how = f"stopped with SIGTERM (pid {self.pid})"
        if alive:
            _signal_all(alive, signal.SIGKILL)
            _wait_gone(alive, KILL_WAIT, self.popen)
            how = f"killed with SIGKILL after ignoring SIGTERM for {grace:g} s (pid {self.pid})"
        self._reap()
        return how

    def family_pids(self) -> set[int]:
        return {proc.pid for proc in self._family()}

    def _family(self) -> list[psutil.Process]:
        if self.proc is None or not self.alive():
            return []
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return [self.proc]

    def _reap(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=KILL_WAIT)


def _listeners(port: int) -> set[int]:
    """Pids of the processes listening on TCP ``port`` that we may see."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {
        conn.pid
        for conn in connections
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid
    }


def _signal_all(procs: Sequence[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _is_gone(proc: psutil.Process, popen: subprocess.Popen[bytes] | None) -> bool:
    if popen is not None and proc.pid == popen.pid:
        return popen.poll() is not None
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(
    procs: Sequence[psutil.Process], timeout: float, popen: subprocess.Popen[bytes] | None
) -> list[psutil.Process]:
    """Wait up to ``timeout`` for ``procs`` to end (zombies count as ended); the survivors.

    Not psutil.wait_procs: for processes that are not our children it waits for the pid to
    vanish, which a zombie owned by another worker never does.
    """
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [proc for proc in alive if not _is_gone(proc, popen)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return alive


# --- readiness ---------------------------------------------------------------------------------


def make_probe(ready: Ready, server: Server) -> Probe:
    """The readiness check named by ``ready`` for ``server``: (ready?, what was seen)."""
    if callable(ready):
        return lambda: _call_probe(ready, server)
    if ready == "tcp":
        return lambda: _tcp_probe(server.port_or_fail())
    if ready.startswith("http:"):
        path = "/" + ready[len("http:") :].lstrip("/")
        return lambda: _http_probe(f"http://{HOST}:{server.port_or_fail()}{path}")
    if ready.startswith("log:"):
        pattern = re.compile(ready[len("log:") :], re.MULTILINE)
        return lambda: _log_probe(pattern, server)
    raise ServerError(
        f"Unknown ready={ready!r} for server '{server.name}': use 'tcp', 'http:/path', "
        "'log:<regex>' or a callable taking the server and returning a bool."
    )


def _call_probe(ready: Callable[[Server], bool], server: Server) -> tuple[bool, str]:
    try:
        return bool(ready(server)), f"{getattr(ready, '__name__', 'callable')}() was false"
    except Exception as exc:
        return False, f"{getattr(ready, '__name__', 'callable')}() raised {exc!r}"


def _tcp_probe(port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT):
            return True, f"port {port} accepted a connection"
    except OSError as exc:
        return False, f"connecting to port {port}: {exc.strerror or exc}"


# No proxies: a CI runner's HTTP_PROXY must not swallow probes of 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_probe(url: str) -> tuple[bool, str]:
    try:
        with _DIRECT.open(url, timeout=PROBE_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()  # an unclosed error response warns when collected
        return False, f"GET {url} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"GET {url} failed: {getattr(reason, 'strerror', None) or reason}"
    return 200 <= status < 400, f"GET {url} answered HTTP {status}"


def _log_probe(pattern: re.Pattern[str], server: Server) -> tuple[bool, str]:
    text = read_tail(server.log_path, start=server.log_offset, lines=1_000_000)
    if pattern.search(text):
        return True, f"the log matched {pattern.pattern!r}"
    return False, f"no line of the log matched {pattern.pattern!r} yet"


# --- shared servers ----------------------------------------------------------------------------


class SharedSlot:
    """The files by which the workers of one run share a server: a lock and a state file.

    The state holds the server's pid (with its creation time, so a reused pid is not mistaken
    for it), its port and the pids of the workers using it; the last user to leave stops it.
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.lock_path = folder / "lock"
        self.state_path = folder / "state.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self.lock_path.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(state, dict):
            return {}
        # Workers that died without leaving must not keep the server alive forever.
        state["users"] = [pid for pid in state.get("users", []) if psutil.pid_exists(pid)]
        return state

    def write(self, state: Mapping[str, Any]) -> None:
        partial = self.state_path.with_suffix(".tmp")
        partial.write_text(json.dumps(dict(state)), encoding="utf-8")
        partial.replace(self.state_path)


# --- the server handle -------------------------------------------------------------------------


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
        return any("{port}" in text for text in texts) or (
            isinstance(self.ready, str) and (self.ready == "tcp" or self.ready.startswith("http:"))
        )


class Server:
    """A running server: ``name``, ``port``, ``url``, ``pid``, ``log_path``, its folders, and
    `ensure_alive`, `restart`, `stop`. Made by `ServerManager.start`."""

    def __init__(
        self, spec: ServerSpec, folders: Folders, *, run_dir: Path | None, log: Log
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.folders = folders.create()
        self.run_dir = run_dir
        self.log = log
        self.log_offset = 0
        self.restarts = 0
        self.port: int | None = spec.port
        self._process: _Process | None = None
        self._launcher: subprocess.Popen[bytes] | None = None
        self._shared = SharedSlot(folders.root) if spec.shared else None
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
        """The last ``lines`` lines its current incarnation wrote."""
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
        self.restarts += 1
        self._stopped = False
        self._launch()
        if self._shared is not None:
            self._publish_shared()

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """The shared slot's lock for a shared server; nothing to lock for a private one."""
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
            state = self._shared.read()
            users = [pid for pid in state.get("users", []) if pid != os.getpid()]
            if users:
                self._shared.write({**state, "users": users})
                self._hand_over()
                return
            self._end_current()
            self._shared.write({})

    # starting

    def start_or_join(self) -> Server:
        """Start the server; a shared one only if no worker of the run has it running."""
        if self._shared is None:
            self._launch()
            return self
        with self._shared.locked():
            if not self._adopt_shared():
                self._launch()
            self._publish_shared()
        return self

    def _launch(self) -> None:
        """Start and wait until ready, retrying with another port after EADDRINUSE."""
        wants_port = self.spec.needs_port() and self.spec.port is None
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if wants_port and (self.port is None or attempt > 1):
                self.port = free_port()
            try:
                self._start_once()
                return
            except _PortTaken:
                if not wants_port or attempt == PORT_ATTEMPTS:
                    raise
                self.log(f"noxlib: server '{self.name}' lost port {self.port}; trying another")

    def _start_once(self) -> None:
        deadline = time.monotonic() + self.spec.timeout
        popen = self._spawn()
        try:
            if self.spec.daemon:
                self._launcher = popen
                self._process = self._await_daemon(popen, deadline)
                # The daemon left our tree and may have dropped the run's environment.
                _record_in_ledger(self.run_dir, self._process.pid, self.port, self.name)
            else:
                self._process = _Process(popen.pid, popen)
            self._wait_ready(self._process, deadline)
        except BaseException:
            self._end_current()
            raise

    def _placeholders(self) -> dict[str, str]:
        values = {"home": str(self.folders.home), "tmp": str(self.folders.tmp)}
        if self.port is not None:
            values["port"] = str(self.port)
        return values

    def _spawn(self) -> subprocess.Popen[bytes]:
        values = self._placeholders()
        if self.spec.daemon:
            values["pid_file"] = str(self.pid_file)
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()  # a stale pid file would name the previous incarnation
        argv = [expand(arg, values) for arg in self.spec.argv]
        env = server_environment(
            os.environ, self.folders, self.spec.env, values, isolate=self.spec.isolate
        )
        with self.log_path.open("ab") as log:
            log.write(f"=== noxlib: starting server '{self.name}': {argv} ===\n".encode())
            log.flush()
            self.log_offset = log.tell()
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
        return popen

    def _await_daemon(self, launcher: subprocess.Popen[bytes], deadline: float) -> _Process:
        """The daemon's process, from the pid file its control script (``launcher``) writes."""
        delay = FIRST_POLL_DELAY
        while True:
            found = self._daemon_from_pid_file()
            if found is not None:
                return found
            code = launcher.poll()
            if code not in (None, 0):
                raise self._start_error(f"its control script {describe_exit(code)}")
            if time.monotonic() >= deadline:
                state = "exited" if code == 0 else "is still running"
                raise self._start_error(
                    f"its pid file {self.pid_file} named no live process after "
                    f"{self.spec.timeout:g} s (the control script {state})"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, MAX_POLL_DELAY)

    def _daemon_from_pid_file(self) -> _Process | None:
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").split()[0])
        except (OSError, ValueError, IndexError):
            return None
        found = _Process(pid)
        return found if found.alive() else None

    def _wait_ready(self, process: _Process, deadline: float) -> None:
        probe = make_probe(self.spec.ready, self)
        delay = FIRST_POLL_DELAY
        foreign_since = 0.0
        while True:
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
            delay = min(delay * 1.5, MAX_POLL_DELAY)

    def _answered_by(self, process: _Process) -> bool:
        """Whether the port probes reached ``process`` (or its children), as far as we can tell.

        Only tcp and http readiness ask the port; a listener we cannot see (another user's
        process) gets the benefit of the doubt.
        """
        ready = self.spec.ready
        asks_port = isinstance(ready, str) and (ready == "tcp" or ready.startswith("http:"))
        if not asks_port or self.port is None:
            return True
        listeners = _listeners(self.port)
        return not listeners or bool(listeners & process.family_pids())

    def _exited_error(self, process: _Process) -> ServerStartError:
        process.end(0)  # reap it, so the exit code is known
        how = process.exit_description()
        error = self._start_error(f"exited before it was ready: {how}")
        taken = self.port is not None and ADDRESS_IN_USE.search(self.log_tail())
        return _PortTaken(str(error)) if taken else error

    def _start_error(self, what: str) -> ServerStartError:
        argv = shlex.join(self.spec.argv)
        return ServerStartError(
            f"server '{self.name}' {what}.\n  argv: {argv}\n  port: {self.port}\n"
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
            _Process(launcher.pid, launcher).end(self.spec.grace)

    def _hand_over(self) -> None:
        """Leave a shared server running for the other workers, without waiting for it."""
        process, self._process = self._process, None
        if process is not None and process.popen is not None:
            _HANDED_OVER.append(process.popen)
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            _HANDED_OVER.append(launcher)

    # sharing (called with the slot locked)

    def _adopt_shared(self) -> bool:
        """Use the shared server if one runs (maybe restarted by another worker)."""
        assert self._shared is not None
        state = self._shared.read()
        if "pid" not in state:
            return False
        if self._process is not None and self._process.pid == state["pid"] and self.alive():
            return True
        found = _Process.known(state["pid"], state.get("create_time", 0.0))
        if found is None:
            return False
        self._process, self.port = found, state.get("port")
        self.log_offset = state.get("log_offset", 0)
        return True

    def _publish_shared(self) -> None:
        assert self._shared is not None
        assert self._process is not None
        state = self._shared.read()
        users = [pid for pid in state.get("users", []) if pid != os.getpid()]
        self._shared.write(
            {
                "pid": self._process.pid,
                "create_time": self._process.create_time(),
                "port": self.port,
                "log_offset": self.log_offset,
                "users": [*users, os.getpid()],
            }
        )


class ServerManager:
    """Starts and stops the servers of one test session; the ``noxlib_servers`` fixture.

    ``base_dir`` holds each server's folders (``<base_dir>/<name>/``), ``shared_dir`` those of
    servers shared among the workers of the run, ``run_dir`` is the noxlib run folder whose
    ledger records every server (None outside a noxlib run), ``log`` receives notes.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        shared_dir: Path | None = None,
        run_dir: Path | None = None,
        log: Log = lambda message: None,
    ) -> None:
        self.base_dir = base_dir
        self.shared_dir = shared_dir or base_dir / "shared"
        self.run_dir = run_dir
        self.log = log
        self.servers: dict[str, Server] = {}

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Ready = "tcp",
        env: Mapping[str, str] | None = None,
        isolate: bool = True,
        timeout: float = 30.0,
        respawn: bool = True,
        shared: bool = False,
        daemon: bool = False,
        pid_file: str | None = None,
        port: int | None = None,
        grace: float = DEFAULT_GRACE,
    ) -> Server:
        """Start server ``name`` from ``argv`` and return it once it is ready.

        ``argv`` may hold ``{port}`` (a free port, or ``port`` when given), ``{home}``,
        ``{tmp}`` and ``{pid_file}``; ``env`` adds variables (same placeholders). ``ready`` is
        "tcp", "http:/path", "log:<regex>" or a callable(server) -> bool, polled until
        ``timeout`` seconds. ``isolate`` gives the server its own HOME, TMPDIR, XDG_* folders
        and working directory. ``respawn=False`` makes a death an error instead of a restart.
        ``shared`` shares one server among the xdist workers of the run. ``daemon`` means the
        argv is a control script that forks the server and exits; its pid comes from
        ``pid_file`` (default ``{pid_file}``, a file in the server's folder). ``grace`` is how
        long SIGTERM may take before SIGKILL.
        """
        running = self.servers.get(name)
        if running is not None and running.alive():
            raise ServerError(
                f"A server named '{name}' is already running (pid {running.pid}); "
                "stop it first or give the new one another name."
            )
        if not argv:
            raise ServerError(f"server '{name}' needs a command: argv is empty")
        spec = ServerSpec(
            name=name,
            argv=tuple(argv),
            ready=ready,
            env=dict(env or {}),
            isolate=isolate,
            timeout=timeout,
            respawn=respawn,
            shared=shared,
            daemon=daemon,
            pid_file=pid_file,
            port=port,
            grace=grace,
        )
        root = (self.shared_dir if shared else self.base_dir) / _folder_name(name)
        server = Server(spec, Folders(root), run_dir=self.run_dir, log=self.log)
        self.servers[name] = server
        return server.start_or_join()

    def stop_all(self) -> list[str]:
        """Stop every server (last started first); the errors met, as messages."""
        errors = []
        for server in reversed(list(self.servers.values())):
            try:
                server.stop()
            except Exception as exc:
                errors.append(f"server '{server.name}' did not stop cleanly: {exc}")
        return errors


def _folder_name(name: str) -> str:
    """``name`` made safe as one path component."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "server"
