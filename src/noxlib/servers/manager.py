"""`ServerManager`: starts and stops the servers of one test session, by name.

It imports neither pytest nor nox; the pytest plugin's ``noxlib_servers`` fixture is one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from noxlib.errors import ServerError
from noxlib.servers.folders import Folders
from noxlib.servers.handle import DEFAULT_GRACE, Log, Ready, Server, ServerSpec
from noxlib.servers.ports import free_port


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
        keep_shared: bool = False,
    ) -> None:
        self.base_dir = base_dir
        # Batches: a shared server outlives each batch's process and serves the next one; the
        # run's reaping ends it when the run ends.
        self.keep_shared = keep_shared
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
        self._check_new(name, argv)
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
        server = self.servers[name] = self._server(spec)
        return server.start_or_join()

    def _server(self, spec: ServerSpec) -> Server:
        root = (self.shared_dir if spec.shared else self.base_dir) / _folder_name(spec.name)
        return Server(
            spec,
            Folders(root),
            run_dir=self.run_dir,
            log=self.log,
            pick_port=self.pick_port,
            keep_shared=self.keep_shared,
        )

    def _check_new(self, name: str, argv: Sequence[str]) -> None:
        running = self.servers.get(name)
        if running is not None and running.alive():
            raise ServerError(
                f"A server named '{name}' is already running (pid {running.pid}); "
                "stop it first or give the new one another name."
            )
        if not argv:
            raise ServerError(f"server '{name}' needs a command: argv is empty")

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
