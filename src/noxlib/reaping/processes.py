"""Ending processes: SIGTERM all at once, a grace period, SIGKILL the rest, bounded waits.

The one escalation both reaping and managed servers use, in the manner of nox's popen. Pure
mechanics on psutil handles: which processes to end, and why, is the caller's business.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

# How long after SIGKILL we wait for a process to vanish (it may be in uninterruptible I/O).
KILL_WAIT = 5.0
WAIT_STEP = 0.01

Popen = subprocess.Popen[bytes]


@dataclass(frozen=True)
class Ending:
    """How process ``pid`` ended: ``outcome`` for a log line; ``outlived_grace`` when it was
    still running once the grace period after SIGTERM was over."""

    pid: int
    outcome: str
    outlived_grace: bool = False


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


def is_gone(proc: psutil.Process, popen: Popen | None = None) -> bool:
    """Whether ``proc`` has ended; a zombie has. ``popen``, when it is ``proc``'s Popen, is
    asked instead, so that its exit code is collected where its owner expects it."""
    if popen is not None and proc.pid == popen.pid:
        return popen.poll() is not None
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return not proc.is_running()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    # A zombie has ended; collect it if it is our child so it does not linger in the table.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)
    return True


def wait_gone(
    procs: Sequence[psutil.Process], timeout: float, popen: Popen | None = None
) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to end; return those still running.

    Not psutil.wait_procs: for processes that are not our children it waits for the pid to
    vanish, which a zombie owned by another process never does. ``popen`` as in `is_gone`.
    """
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not is_gone(p, popen)]
    while alive and time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        alive = [p for p in alive if not is_gone(p, popen)]
    return alive


def send(proc: psutil.Process, sig: int) -> str | None:
    """Send ``sig`` to ``proc``; None when sent, else why not. psutil refuses a pid reused
    since ``proc`` was found, so a stranger never gets the signal."""
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return "was already gone"
    except psutil.AccessDenied:
        return "could not be ended (permission denied)"
    if sig == signal.SIGTERM:
        # A stopped process cannot act on SIGTERM until it runs again.
        with contextlib.suppress(psutil.Error):
            proc.resume()
    return None


def end(procs: Sequence[psutil.Process], grace: float, popen: Popen | None = None) -> list[Ending]:
    """End ``procs``: SIGTERM to all at once, up to ``grace`` seconds for them to go, SIGKILL
    to the rest and up to KILL_WAIT seconds more. Returns how each ended, in the order given.

    All at once, the way a terminal's Ctrl-C reaches a whole process group: a wrapper that
    dies alone would leave its real work running. ``popen`` as in `is_gone`.
    """
    outcome: dict[int, str] = {}
    termed = []
    for proc in procs:
        refused = send(proc, signal.SIGTERM)
        if refused:
            outcome[proc.pid] = refused
        else:
            termed.append(proc)
    stubborn = wait_gone(termed, grace, popen)
    for proc in termed:
        outcome.setdefault(proc.pid, "ended by SIGTERM")
    for proc in stubborn:
        outcome[proc.pid] = send(proc, signal.SIGKILL) or f"killed by SIGKILL after {grace:g} s"
    for proc in wait_gone(stubborn, KILL_WAIT, popen):
        outcome[proc.pid] = "still running after SIGKILL (stuck in the kernel?)"
    late = {proc.pid for proc in stubborn}
    return [Ending(proc.pid, outcome[proc.pid], proc.pid in late) for proc in procs]
