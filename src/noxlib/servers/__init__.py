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
- optionally a daemon (its control script forks, the real pid comes from a pid file, and is
  adopted only once proven to be the one this start made) and optionally shared by the xdist
  workers of one run (a file lock and a list of users).

The rooms: `manager` (`ServerManager`), `handle` (`Server`, one server over its life),
`process` (`ServerProcess`, the process a start made or adopted), `probes` (readiness),
`folders` (files, environment, log tails), `ports`, and `sharing` (the file by which xdist
workers share a server). Ending processes is reaping's escalation
(`noxlib.reaping.processes`).
"""

from __future__ import annotations

from noxlib.errors import ServerDiedError, ServerError, ServerStartError
from noxlib.servers.folders import tail_block
from noxlib.servers.handle import Server
from noxlib.servers.manager import ServerManager

__all__ = [
    "Server",
    "ServerDiedError",
    "ServerError",
    "ServerManager",
    "ServerStartError",
    "tail_block",
]
