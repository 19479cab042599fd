"""The process of a managed server: the one a start made (our child, or the daemon its pid file
names) or adopted from another worker, with its descendants, until it ends or is ended."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import psutil

from noxlib.reaping import processes
from noxlib.reaping.identity import Launch, created_at, not_made_by
from noxlib.reaping.processes import KILL_WAIT, describe_exit


class ForeignPid(Exception):
    """A daemon's pid file names a live process its control script did not make."""

    def __init__(self, pid: int, why: str) -> None:
        super().__init__(f"pid {pid}: {why}")
        self.pid = pid
        self.why = why


class ServerProcess:
    """A server's current process: our child (``popen``) or a process we only know by pid.

    A restart makes a new one; `Server.pid` is the pid of the current one.
    """

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.popen = popen
        try:
            self.proc: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self.proc = None

    @classmethod
    def find(cls, pid: int, create_time: float) -> ServerProcess | None:
        """The process ``pid`` if it is still the one created at ``create_time``."""
        found = cls(pid)
        if found.proc is None or not found.alive():
            return None
        return found if created_at(found.proc, create_time) else None

    @classmethod
    def from_pid_file(cls, path: Path, launch: Launch) -> ServerProcess | None:
        """The live process named by the first word of the pid file at ``path``, if any, once
        proven to be one that ``launch`` (the control script) made; raises ForeignPid, saying
        why, when the file names a live process that is not (see `not_made_by`): adopting it
        would record it for reaping and end it, with all its children, at the server's stop."""
        try:
            pid = int(path.read_text(encoding="utf-8").split()[0])
        except (OSError, ValueError, IndexError):
            return None
        found = cls(pid)
        if found.proc is None or not found.alive():
            return None
        why = not_made_by(found.proc, launch)
        if why is not None:
            raise ForeignPid(pid, why)
        return found

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
        # A zombie counts as gone: it only waits for its parent (maybe another worker).
        return self.proc is not None and not processes.is_gone(self.proc)

    def exit_description(self) -> str:
        if self.popen is not None and self.popen.returncode is not None:
            return describe_exit(self.popen.returncode)
        return "exited (exit status unknown: it is not a child of this process)"

    def end(self, grace: float) -> str:
        """Stop the process and all its descendants at once (see `processes.end`), giving them
        ``grace`` seconds between SIGTERM and SIGKILL: a shell wrapper that dies alone would
        leave the real server running. Returns how it ended, for logs.
        """
        family = self._family()
        if not family:
            self._reap()
            return "already gone"
        endings = processes.end(family, grace, self.popen)
        self._reap()
        if any(ending.outlived_grace for ending in endings):
            return f"killed with SIGKILL after ignoring SIGTERM for {grace:g} s (pid {self.pid})"
        return f"stopped with SIGTERM (pid {self.pid})"

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
