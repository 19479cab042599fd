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

The pieces live in their own modules (ports, folders, probes, incarnation, shared, and
noxlib/processes.py for ending); the names users know are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from noxlib.errors import ServerDiedError, ServerError, ServerStartError
from noxlib.folders import (
    LOG_FILE,
    LOG_TAIL_LINES,
    XDG_FOLDERS,
    Folders,
    expand,
    read_tail,
    server_environment,
    tail_block,
)
from noxlib.ports import ADDRESS_IN_USE, HOST, free_port
from noxlib.probes import PROBE_TIMEOUT, Probe, Ready, make_probe
from noxlib.reaping.processes import KILL_WAIT, describe_exit
from noxlib.server import DEFAULT_GRACE, Log, Server, ServerSpec
from noxlib.shared import SharedSlot

__all__ = [
    "ADDRESS_IN_USE",
    "DEFAULT_GRACE",
    "HOST",
    "KILL_WAIT",
    "LOG_FILE",
    "LOG_TAIL_LINES",
    "PROBE_TIMEOUT",
    "XDG_FOLDERS",
    "Folders",
    "Probe",
    "Ready",
    "Server",
    "ServerDiedError",
    "ServerError",
    "ServerManager",
    "ServerSpec",
    "ServerStartError",
    "SharedSlot",
    "describe_exit",
    "expand",
    "free_port",
    "make_probe",
    "read_tail",
    "server_environment",
    "tail_block",
]


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
        pick_port: Callable[[], int] = free_port,
    ) -> None:
        self.base_dir = base_dir
        self.shared_dir = shared_dir or base_dir / "shared"
        self.run_dir = run_dir
        self.log = log
        self.pick_port = pick_port  # where ``{port}`` comes from
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
        server = Server(
            spec,
            Folders(root),
            run_dir=self.run_dir,
            log=self.log,
            pick_port=self.pick_port,
        )
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
