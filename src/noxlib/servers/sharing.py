"""A server shared by the xdist workers of one run: the file they find it in.

A folder with a lock and a state file. The state names the server (pid with its creation time,
so a reused pid is not mistaken for it, port and log offset) and the pids of the workers using
it; the last user to leave stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from noxlib import locks


@dataclass(frozen=True)
class SharedServer:
    """The shared server as the state file names it: enough for another worker to adopt it."""

    pid: int
    create_time: float
    port: int | None
    log_offset: int


class SharedServerFile:
    """The files by which the workers of one run share a server: a lock and a state file in
    ``folder``. Read and change the state only inside `locked`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.lock_path = folder / "lock"
        self.state_path = folder / "state.json"

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """The lock every worker holds while it reads or changes the state."""
        return locks.held(self.lock_path)

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

    def read_server(self) -> SharedServer | None:
        """The server the state names, if any (it may have died since)."""
        state = self.read()
        if "pid" not in state:
            return None
        return SharedServer(
            state["pid"],
            state.get("create_time", 0.0),
            state.get("port"),
            state.get("log_offset", 0),
        )

    def publish(self, server: SharedServer) -> None:
        """Name ``server`` as the shared one, with this worker among its users."""
        self.write({**asdict(server), "users": [*self._other_users(self.read()), os.getpid()]})

    def leave(self) -> bool:
        """Take this worker off the users; True when others still use the server, which must
        then keep running."""
        state = self.read()
        users = self._other_users(state)
        if users:
            self.write({**state, "users": users})
        return bool(users)

    def clear(self) -> None:
        """Forget the server: it was stopped by its last user."""
        self.write({})

    @staticmethod
    def _other_users(state: Mapping[str, Any]) -> list[int]:
        return [pid for pid in state.get("users", []) if pid != os.getpid()]
