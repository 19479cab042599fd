"""Run identity: a unique id per run, its folder under ``.noxlib/runs/`` and its liveness lock.

A live run holds an exclusive ``flock`` on ``<run dir>/lock`` for its whole life. The kernel
drops the lock when the holder dies however it dies (SIGKILL and OOM included), so "can I take
the lock?" answers "is that run dead?" without trusting any pid written in a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from noxlib import locks

RUN_ID_ENV = "NOXLIB_RUN_ID"
RUN_DIR_ENV = "NOXLIB_RUN_DIR"
# The part (shard, batch) a process was started by; reaping ends a batch's leftovers by it.
PART_NAME_ENV = "NOXLIB_PART_NAME"
RUNS = "runs"
LOCK = "lock"
STARTING_SUFFIX = ".starting"
# A folder still under its hidden starting name this long after creation was left by a runner
# that died within microseconds of starting; younger ones belong to a run being born.
STARTING_MAX_AGE = 600.0

Log = Callable[[str], object]
# A dead run's folder, and its lock (None when the folder had no lock file), held by a sweep.
Claim = tuple[Path, IO[bytes] | None]


@dataclass
class Run:
    """A live run: its id, its folder, and the open lock file that proves it is alive."""

    run_id: str
    dir: Path
    lock_file: IO[bytes]

    def env(self) -> dict[str, str]:
        """Variables every process of the run inherits; reaping matches them exactly."""
        return {RUN_ID_ENV: self.run_id, RUN_DIR_ENV: str(self.dir)}

    @property
    def results_path(self) -> Path:
        return self.dir / "results.jsonl"


def new_run_id() -> str:
    """Unique across runs, checkouts and machines: time, pid and 64 random bits."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(8)}"


def ensure_state_dir(state_dir: Path) -> Path:
    """Create ``.noxlib/``, with a .gitignore so it is never committed, and its ``runs/``
    private to the user: a run's ledger names the processes a later run may end."""
    state_dir.mkdir(exist_ok=True)  # the umask's mode: its durations are anyone's to read
    ignore = state_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    (state_dir / RUNS).mkdir(mode=0o700, exist_ok=True)
    return state_dir / RUNS


def start_run(state_dir: Path) -> Run:
    """Open a new run under ``state_dir`` and hold its lock until `noxlib.reaping.finish_run`."""
    runs = ensure_state_dir(state_dir)
    run_id = new_run_id()
    # Lock the folder under a hidden name, then give it its real one: a sweep never sees a run
    # folder whose lock is not held yet, which it would take for a dead run's.
    starting = runs / f".{run_id}{STARTING_SUFFIX}"
    starting.mkdir(mode=0o700)
    lock = locks.take(starting / LOCK, wait=False)
    assert lock is not None, "a brand-new run folder cannot be locked by anyone else"
    run_dir = runs / run_id
    starting.rename(run_dir)
    return Run(run_id, run_dir, lock)


# --- claiming dead runs -------------------------------------------------------------------------


def claim_run(folder: Path) -> Claim | None:
    """Take the lock of run folder ``folder`` if its run is dead; None if alive or gone.

    A folder whose lock file is missing is claimed without a lock: a live run keeps its lock
    file until its folder is deleted.
    """
    try:
        # Never create the lock of a folder a sweep only inspects; not inherited by children
        # (see noxlib.locks), so a server cannot keep a dead run looking alive.
        lock = locks.take(folder / LOCK, wait=False, create=False)
    except FileNotFoundError:
        return (folder, None) if folder.is_dir() else None
    except OSError:
        return None
    return None if lock is None else (folder, lock)


def claim_dead_runs(runs_dir: Path, log: Log) -> Iterator[Claim]:
    """Claim every dead run under ``runs_dir``; when locks cannot be trusted there, say so on
    ``log`` and claim none."""
    try:
        folders = sorted(runs_dir.iterdir())
    except OSError:
        return
    if folders and not _locks_work(runs_dir):
        log(
            f"noxlib: warning: file locks are not enforced in {runs_dir}, so a live run cannot "
            "be told from a dead one; no earlier run is reaped (move the checkout to a local "
            "disk, or end leftovers by pid)"
        )
        return
    for folder in folders:
        if folder.is_symlink() or not folder.is_dir():
            continue
        if folder.name.startswith(".") and not _abandoned_start(folder):
            continue
        claim = claim_run(folder)
        if claim is not None:
            yield claim


def release(claims: list[Claim]) -> None:
    """Drop the locks of ``claims`` (their folders may be deleted already)."""
    for _, lock in claims:
        if lock:
            lock.close()


def _locks_work(runs_dir: Path) -> bool:
    """Whether flock is enforced in ``runs_dir``: a second open of a locked file must be refused.

    Some network and FUSE filesystems accept every lock; there every run would look dead.
    """
    probe = runs_dir / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        first = locks.take(probe, wait=False)
        if first is None:
            return False
        with first:
            second = locks.take(probe, wait=False)
            if second is None:
                return True
            second.close()
            return False
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _abandoned_start(folder: Path) -> bool:
    try:
        age = time.time() - folder.stat().st_mtime
    except OSError:
        return False
    return folder.name.endswith(STARTING_SUFFIX) and age > STARTING_MAX_AGE
