"""Proof of identity: the facts that name one process, and the check made before adopting one.

A pid names a process only for a while: pids are reused. Within one boot, a pid and its start
time (clock ticks since boot, from /proc; elsewhere psutil's epoch create time) name exactly
one process. Reaping proves ledger entries with these facts (`noxlib.reaping.sweep`), and
managed servers prove with `not_made_by` that a daemon's pid file names the process their
launch made before they adopt it (and so record it for reaping and, at the end, end it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from noxlib.reaping.runs import RUN_ID_ENV

# The kernel's id of this boot. A pid and a start time name one process only within one boot.
# Tests point this at a file of their own to play a reboot.
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
# psutil's epoch create times are derived from the boot time the kernel reports, which can
# shift between reads, so two reads of one process's create time may differ a little.
CREATE_TIME_TOLERANCE = 0.01


def boot_id(id_file: Path | None = None) -> str:
    """An id of the current boot: the kernel's boot id, read from ``id_file`` (default
    BOOT_ID_FILE), else the boot time (BSD, macOS)."""
    try:
        return (id_file or BOOT_ID_FILE).read_text(encoding="ascii").strip()
    except OSError:
        return f"boot-time-{psutil.boot_time():.0f}"


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot, read from /proc; None when unknown.

    Exact and immune to clock changes, unlike the epoch create time, so it is what proves a
    ledger entry still names the same process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = text[text.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def created_at(proc: psutil.Process, create_time: float) -> bool:
    """Whether ``proc`` is the process created at epoch ``create_time`` (not a reused pid)."""
    try:
        return abs(proc.create_time() - create_time) < CREATE_TIME_TOLERANCE
    except psutil.Error:
        return False


@dataclass(frozen=True)
class Launch:
    """A process we started: its start in clock ticks since boot (None without /proc), the
    epoch time just before we started it, and the run id we gave it (None: none). Every
    process it makes starts no earlier, and inherits that id unless it drops its environment."""

    ticks: int | None
    time: float
    run_id: str | None


def not_made_by(proc: psutil.Process, launch: Launch) -> str | None:
    """Why ``proc`` cannot be a process that ``launch`` made, or None when nothing says so.

    The proof reaping asks of a ledger entry, for a process we only know by a pid someone
    wrote down: it runs as our uid; it started no earlier than ``launch`` (exact clock ticks
    where /proc has them, else epoch create times); and where its environment can be read, it
    holds no ``NOXLIB_RUN_ID`` other than the launch's. A process that dropped its environment
    is not refused for that. pid 1, this process and its ancestors are always refused.
    """
    try:
        with proc.oneshot():
            return _first_objection(proc, launch)
    except psutil.NoSuchProcess:
        return "it is gone"
    except psutil.Error as exc:
        return f"it cannot be inspected ({exc})"


def _first_objection(proc: psutil.Process, launch: Launch) -> str | None:
    if proc.pid in {0, 1, os.getpid()} or proc.pid in _ancestors():
        return "it is pid 1, this process or one of its ancestors"
    uid = proc.uids().real
    if uid != os.getuid():
        return f"it belongs to uid {uid}, not to this user (uid {os.getuid()})"
    early = _started_before(proc, launch)
    if early is not None:
        return f"it started {early:.2f} s before the launch that would have made it"
    try:
        theirs = proc.environ().get(RUN_ID_ENV)
    except psutil.AccessDenied:
        theirs = None  # unreadable (setuid, non-dumpable): the other checks must do
    if theirs is not None and theirs != launch.run_id:
        ours = f"this run's {launch.run_id}" if launch.run_id else "none, outside a noxlib run"
        return f"its environment holds {RUN_ID_ENV}={theirs}, another run's (ours: {ours})"
    return None


def _started_before(proc: psutil.Process, launch: Launch) -> float | None:
    """How many seconds before ``launch`` ``proc`` started, or None if it did not."""
    ticks = start_ticks(proc.pid)
    if ticks is not None and launch.ticks is not None:
        if ticks >= launch.ticks:
            return None
        return (launch.ticks - ticks) / os.sysconf("SC_CLK_TCK")
    earlier = launch.time - proc.create_time()
    return earlier if earlier > CREATE_TIME_TOLERANCE else None


def _ancestors() -> set[int]:
    try:
        return {parent.pid for parent in psutil.Process().parents()}
    except psutil.Error:
        return set()
