"""Reaping: end every process of a run, and nothing else.

A process belongs to run R only when one of these proves it:

* its environment holds ``NOXLIB_RUN_ID`` equal to R's id (exact match, never a substring);
* R's ledger names it, and the live process has the entry's boot, start time and uid (and, when
  its environment is readable, no other run's id);
* it descends from a process proven by one of the above, or, for the live run, from us.

Name, command line, port and process group are never evidence: they are what neighbours share.
The current process, its ancestors and pid 1 are never ended. Only processes of our own uid are
considered. Ending escalates like nox's popen: SIGTERM, a grace period, SIGKILL, bounded waits.

Three callers: ``reap_run`` (post hook of a live run), ``reap_stale_runs`` (pre hook and
``nox -s reap``, for runs whose lock is free, i.e. dead ones) and the warden
(``reap_dead_run``, the moment its runner dies). The warden process lives in noxlib/warden.py;
its handle, ``Warden``, is here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from noxlib.runs import LOCK, RUN_ID_ENV, RUNS, STARTING_SUFFIX, Run, try_lock

Log = Callable[[str], object]

LEDGER = "ledger.jsonl"
# The kernel's id of this boot. A pid and a start time name one process only within one boot.
# Tests point this at a file of their own to play a reboot.
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
# A ledger line stays well under PIPE_BUF (4096), so one O_APPEND write lands whole even when
# many xdist workers append at once; longer lines in a ledger are not ours and are skipped.
MAX_LINE = 4000
MAX_NAME = 80
MAX_COMMAND = 400
MAX_LEDGER_BYTES = 16 * 2**20
MAX_WARNINGS = 20
# How long after SIGKILL we wait for a process to vanish (it may be in uninterruptible I/O).
KILL_WAIT = 5.0
# New processes can appear while we end others (a shell loop, a fixture's teardown): look again
# this many times at most.
ROUNDS = 3
# psutil's epoch create times are derived from the boot time the kernel reports, which can
# shift by a second between reads; only the fallback comparison (no /proc) uses this.
CREATE_TIME_TOLERANCE = 0.01
# A process can only belong to a run if it started after the run did; clocks are compared with
# this much slack because epoch create times can be off by a second.
START_SLACK = 2.0
# A folder still under its hidden starting name this long after creation was left by a runner
# that died within microseconds of starting; younger ones belong to a run being born.
STARTING_MAX_AGE = 600.0
WAIT_STEP = 0.01


# --- facts about processes --------------------------------------------------------------------


def boot_id() -> str:
    """An id of the current boot: the kernel's boot id, else the boot time (BSD, macOS)."""
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip()
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


# --- the ledger -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One ledger line naming a process: what proves, later, that a pid is still that process."""

    pid: int
    create_time: float
    start_ticks: int | None
    boot_id: str
    uid: int
    run_id: str
    name: str = ""
    port: int | None = None


@dataclass(frozen=True)
class Header:
    """The ledger's first line: when and in which boot the run started."""

    run_id: str
    boot_id: str
    started: float


@dataclass
class Ledger:
    """What a run folder's ledger says: its header (None if the run never wrote one), entries."""

    header: Header | None = None
    entries: list[Entry] = field(default_factory=list)


def _append(run_dir: Path, record: dict[str, Any]) -> None:
    # One write on an O_APPEND descriptor: the kernel places each line whole at the end, so
    # concurrent writers never interleave. O_NOFOLLOW: a planted symlink is refused.
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(
        run_dir / LEDGER,
        os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
    )
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _entry_record(
    proc: psutil.Process, run_id: str, name: str | None, port: int | None
) -> dict[str, Any]:
    with proc.oneshot():
        return {
            "kind": "process",
            "pid": proc.pid,
            "create_time": proc.create_time(),
            "start_ticks": start_ticks(proc.pid),
            "boot_id": boot_id(),
            "uid": proc.uids().real,
            "name": (name or proc.name())[:MAX_NAME],
            "port": port,
            "run_id": run_id,
        }


def record_process(
    run_dir: Path, pid: int, *, port: int | None = None, name: str | None = None
) -> None:
    """Append to the ledger of the run in ``run_dir`` an entry for process ``pid``.

    The entry holds what later proves the pid is still that process: create time, start ticks,
    boot id and uid, read now with psutil. ``port`` and ``name`` (default: the process name)
    are for the log. The run id is the folder's name. Safe when many processes append at once.
    Raises psutil.NoSuchProcess when ``pid`` is already gone.
    """
    _append(run_dir, _entry_record(psutil.Process(pid), run_dir.name, name, port))


def open_ledger(run: Run) -> None:
    """Write ``run``'s ledger header: the boot and time it started.

    A dead run's processes found by their environment are only ended when this header shows the
    run started in the current boot, and only if they started after it.
    """
    _append(
        run.dir,
        {"kind": "run", "run_id": run.run_id, "boot_id": boot_id(), "started": time.time()},
    )


class _Warnings:
    """Warnings about one ledger, capped so a garbage file cannot flood the log."""

    def __init__(self, path: Path, log: Log) -> None:
        self.path = path
        self.log = log
        self.count = 0

    def __call__(self, line_no: int, why: str) -> None:
        self.count += 1
        if self.count <= MAX_WARNINGS:
            self.log(f"noxlib: warning: skipped line {line_no} of {self.path}: {why}")

    def close(self) -> None:
        if self.count > MAX_WARNINGS:
            self.log(f"noxlib: warning: skipped {self.count - MAX_WARNINGS} more line(s)")


def read_ledger(run_dir: Path, log: Log) -> Ledger:
    """Read the ledger in ``run_dir``; every line that cannot be trusted is skipped with a
    warning on ``log``: not JSON, another run's, pid 0, 1 or negative, another uid's, too long.
    A missing or empty ledger is an empty one.
    """
    path = run_dir / LEDGER
    ledger = Ledger()
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_LEDGER_BYTES)
    except FileNotFoundError:
        return ledger
    except OSError as exc:
        log(f"noxlib: warning: could not read {path}: {exc}")
        return ledger
    warn = _Warnings(path, log)
    for line_no, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = _parse_line(raw, run_dir.name)
        except ValueError as exc:
            warn(line_no, str(exc))
            continue
        if isinstance(item, Header):
            ledger.header = ledger.header or item
        else:
            ledger.entries.append(item)
    warn.close()
    return ledger


def _parse_line(raw: bytes, run_id: str) -> Header | Entry:
    """One ledger line as a Header or Entry of run ``run_id``; ValueError says why not."""
    if len(raw) > MAX_LINE:
        raise ValueError(f"line of {len(raw)} bytes is longer than any noxlib writes")
    try:
        record = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("run_id") != run_id:
        raise ValueError(f"names run {record.get('run_id')!r}, not this folder's run {run_id!r}")
    if record.get("kind") == "run":
        return Header(
            run_id, _field(record, "boot_id", str), float(_field(record, "started", float))
        )
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        raise ValueError(f"pid {pid!r} is not a process noxlib may end")
    uid = _field(record, "uid", int)
    if uid != os.getuid():
        raise ValueError(f"pid {pid} belongs to uid {uid}, not to this user (uid {os.getuid()})")
    ticks = record.get("start_ticks")
    port = record.get("port")
    name = record.get("name")
    return Entry(
        pid=pid,
        create_time=float(_field(record, "create_time", float)),
        start_ticks=ticks if _is_int(ticks) else None,
        boot_id=_field(record, "boot_id", str),
        uid=uid,
        run_id=run_id,
        name=name if isinstance(name, str) else "",
        port=port if _is_int(port) else None,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(record: dict[str, Any], key: str, kind: type) -> Any:
    """``record[key]`` if it is a ``kind`` (a float may be written as an int); else ValueError."""
    value = record.get(key)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise ValueError(f"{key} {value!r} is missing or not a {kind.__name__}")
    return value


# --- finding a run's processes ----------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """A live process of our uid as one scan saw it."""

    proc: psutil.Process
    ppid: int
    env_readable: bool
    env_run_id: str | None


def _scan() -> dict[int, _Seen]:
    """Every live, non-zombie process of our uid, with its parent and its run id, if any."""
    uid = os.getuid()
    seen: dict[int, _Seen] = {}
    for proc in psutil.process_iter(["ppid", "uids"]):
        uids = proc.info["uids"]
        if uids is None or uids.real != uid:
            continue
        readable, run_id = False, None
        try:
            run_id = proc.environ().get(RUN_ID_ENV)
            readable = True
        except psutil.ZombieProcess:
            continue  # dead already; its parent has yet to collect it
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            pass  # a setuid helper, or a platform that hides environments: ledger only
        seen[proc.pid] = _Seen(proc, proc.info["ppid"], readable, run_id)
    return seen


def _protected() -> set[int]:
    """Pids never ended whatever a ledger says: 0, 1, ourselves and our ancestors."""
    protected = {0, 1, os.getpid()}
    with contextlib.suppress(psutil.Error):
        protected.update(p.pid for p in psutil.Process().parents())
    return protected


@dataclass(frozen=True)
class _Target:
    """A process proven to be of run ``run_id``; ``reason`` says what proved it."""

    proc: psutil.Process
    run_id: str
    reason: str


def _same_start(entry: Entry, proc: psutil.Process) -> bool:
    ticks = start_ticks(proc.pid) if entry.start_ticks is not None else None
    if ticks is not None:
        return ticks == entry.start_ticks
    try:
        return abs(proc.create_time() - entry.create_time) < CREATE_TIME_TOLERANCE
    except psutil.Error:
        return False


def _by_environment(
    run_id: str, ledger: Ledger, seen: dict[int, _Seen], live: bool, current_boot: str
) -> Iterator[_Target]:
    # For a dead run the header must show it started in this boot, and a process must have
    # started after it: an id copied into an older process's environment proves nothing.
    started = 0.0
    if not live:
        if ledger.header is None or ledger.header.boot_id != current_boot:
            return
        started = ledger.header.started - START_SLACK
    for s in seen.values():
        if s.env_run_id != run_id:
            continue
        with contextlib.suppress(psutil.Error):
            if s.proc.create_time() >= started:
                yield _Target(s.proc, run_id, f"{RUN_ID_ENV}={run_id} is in its environment")


def _by_ledger(
    run_id: str, ledger: Ledger, seen: dict[int, _Seen], current_boot: str
) -> Iterator[_Target]:
    for entry in ledger.entries:
        s = seen.get(entry.pid)
        if entry.boot_id != current_boot or s is None:
            continue  # another boot's process, or gone, or now another uid's
        if not _same_start(entry, s.proc):
            continue  # the pid was reused by an unrelated process
        if s.env_readable and s.env_run_id not in (None, run_id):
            continue  # another run's process: that run decides about it
        label = f"{entry.name!r}" + (f" on port {entry.port}" if entry.port else "")
        yield _Target(s.proc, run_id, f"ledger entry {label}: same pid, start time, boot and uid")


def _descendants(roots: dict[int, str], run_id: str, seen: dict[int, _Seen]) -> Iterator[_Target]:
    """Processes below ``roots`` (pid -> why that root is ours), except other runs' processes."""
    children: dict[int, list[int]] = {}
    for pid, s in seen.items():
        children.setdefault(s.ppid, []).append(pid)
    stack = list(roots)
    visited = set(roots)
    while stack:
        parent = stack.pop()
        for child in children.get(parent, ()):
            s = seen[child]
            if child in visited or s.env_run_id not in (None, run_id):
                continue
            visited.add(child)
            stack.append(child)
            yield _Target(s.proc, run_id, f"child of pid {parent}, {roots.get(parent, 'ours')}")


def _find(
    run_id: str,
    ledger: Ledger,
    seen: dict[int, _Seen],
    *,
    live: bool,
    current_boot: str,
    protected: set[int],
) -> list[_Target]:
    """The processes proven to be run ``run_id``'s; ``live`` when it is our own, running run."""
    found: dict[int, _Target] = {}
    for target in (
        *_by_environment(run_id, ledger, seen, live, current_boot),
        *_by_ledger(run_id, ledger, seen, current_boot),
    ):
        found.setdefault(target.proc.pid, target)
    roots = {pid: "ours" for pid in found}
    if live:
        roots[os.getpid()] = "this runner"
    for target in _descendants(roots, run_id, seen):
        found.setdefault(target.proc.pid, target)
    return [t for pid, t in found.items() if pid not in protected]


# --- ending processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reaped:
    """One process a sweep ended (or, in a dry run, would end), and how."""

    pid: int
    name: str
    command: str
    run_id: str
    reason: str
    outcome: str

    def line(self) -> str:
        return (
            f"noxlib: {self.outcome}: {self.name} (pid {self.pid}) of run {self.run_id}; "
            f"command: {self.command}"
        )


def _describe(proc: psutil.Process) -> tuple[str, str]:
    """Name and command line of ``proc``, read before it is signalled, for the log."""
    try:
        with proc.oneshot():
            return proc.name(), _one_line(" ".join(proc.cmdline()) or f"[{proc.name()}]")
    except psutil.Error:
        return "?", "?"


def _one_line(command: str) -> str:
    # One log line per process: the newlines of a `python -c` script would break it.
    command = command.replace("\n", "\\n")
    return command if len(command) <= MAX_COMMAND else f"{command[:MAX_COMMAND]}..."


def _gone(proc: psutil.Process) -> bool:
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


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to end; return those still running."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _send(proc: psutil.Process, sig: int) -> str | None:
    """Send ``sig``; None when sent, else why not. psutil refuses a pid reused meanwhile."""
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


def _end(targets: list[_Target], grace: float, log: Log) -> list[Reaped]:
    """SIGTERM every target at once, wait ``grace`` seconds, SIGKILL the rest; log each one."""
    described = {t.proc.pid: _describe(t.proc) for t in targets}
    outcome: dict[int, str] = {}
    termed = []
    for t in targets:
        refused = _send(t.proc, signal.SIGTERM)
        if refused:
            outcome[t.proc.pid] = refused
        else:
            termed.append(t.proc)
    stubborn = _wait_gone(termed, grace)
    for proc in termed:
        outcome.setdefault(proc.pid, "ended by SIGTERM")
    for proc in stubborn:
        outcome[proc.pid] = _send(proc, signal.SIGKILL) or f"killed by SIGKILL after {grace:g} s"
    for proc in _wait_gone(stubborn, KILL_WAIT):
        outcome[proc.pid] = "still running after SIGKILL (stuck in the kernel?)"
    reaped = []
    for t in targets:
        name, command = described[t.proc.pid]
        row = Reaped(t.proc.pid, name, command, t.run_id, t.reason, outcome[t.proc.pid])
        log(row.line())
        reaped.append(row)
    return reaped


def _dry(targets: list[_Target], log: Log) -> list[Reaped]:
    reaped = []
    for t in targets:
        name, command = _describe(t.proc)
        row = Reaped(t.proc.pid, name, command, t.run_id, t.reason, "would end")
        log(f"{row.line()}; ours because {t.reason}")
        reaped.append(row)
    return reaped


def _sweep(
    runs: dict[str, tuple[Path, Ledger]], log: Log, *, grace: float, live: bool, dry_run: bool
) -> list[Reaped]:
    """Find and end the processes of ``runs`` (run id -> folder and ledger), in rounds."""
    current_boot = boot_id()
    protected = _protected()
    done: list[Reaped] = []
    handled: set[psutil.Process] = set()
    for _ in range(1 if dry_run else ROUNDS):
        seen = _scan()
        targets = [
            t
            for run_id, (_, ledger) in runs.items()
            for t in _find(
                run_id, ledger, seen, live=live, current_boot=current_boot, protected=protected
            )
            if t.proc not in handled
        ]
        if not targets:
            break
        if dry_run:
            return _dry(targets, log)
        for t in targets:
            _note(runs[t.run_id][0], t)
        done += _end(targets, grace, log)
        handled.update(t.proc for t in targets)
    return done


def _note(run_dir: Path, target: _Target) -> None:
    """Record in the ledger a process found by other means, so a sweep that is killed half-way
    leaves the proof for the next one."""
    if target.reason.startswith("ledger"):
        return
    # A process or folder already gone leaves nothing to prove.
    with contextlib.suppress(OSError, psutil.Error):
        _append(run_dir, _entry_record(target.proc, target.run_id, None, None))


# --- the hooks --------------------------------------------------------------------------------


def reap_run(run: Run, log: Log, *, grace: float) -> list[Reaped]:
    """End every leftover process of the live ``run`` (the post hook), logging each on ``log``.

    Its processes are those carrying its id in their environment, those its ledger proves, and
    descendants of those and of the current process; never the current process or its
    ancestors. Each gets SIGTERM, then SIGKILL if still running ``grace`` seconds later.
    """
    reaped = _sweep(
        {run.run_id: (run.dir, read_ledger(run.dir, log))},
        log,
        grace=grace,
        live=True,
        dry_run=False,
    )
    if reaped:
        log(f"noxlib: reaped {len(reaped)} leftover process(es) of run {run.run_id}")
    else:
        log(f"noxlib: no leftover process of run {run.run_id}")
    return reaped


def reap_stale_runs(
    state_dir: Path, log: Log, *, grace: float, dry_run: bool = False
) -> list[Reaped]:
    """End what dead runs under ``state_dir`` left running, then forget those runs.

    A run is dead when its lock (``state_dir/runs/<id>/lock``) can be taken; live runs hold
    theirs, so they are never touched. Only processes whose identity is proven are ended (see
    the module docstring), with SIGTERM, ``grace`` seconds, SIGKILL. With ``dry_run`` nothing
    is ended or deleted: each process that would be is logged on ``log`` with why it is ours.
    """
    claimed = list(_claim_dead_runs(state_dir / RUNS, log))
    try:
        return _reap_claimed(claimed, log, grace=grace, dry_run=dry_run)
    finally:
        for _, lock in claimed:
            if lock:
                lock.close()


def reap_dead_run(run_dir: Path, log: Log, *, grace: float, wait: float = 10.0) -> list[Reaped]:
    """End the processes of the run in ``run_dir`` once its runner is dead, then forget it.

    The warden's job. It waits up to ``wait`` seconds for the run's lock (the runner may still
    be exiting); a run that keeps its lock is alive and left alone, a folder already deleted
    means the run finished normally.
    """
    deadline = time.monotonic() + wait
    while True:
        claim = _claim(run_dir)
        if claim is not None or not run_dir.is_dir():
            break
        if time.monotonic() >= deadline:
            log(f"noxlib: run {run_dir.name} still holds its lock; left alone")
            return []
        time.sleep(WAIT_STEP)
    if claim is None:
        return []
    try:
        return _reap_claimed([claim], log, grace=grace, dry_run=False)
    finally:
        if claim[1]:
            claim[1].close()


_Claim = tuple[Path, IO[bytes] | None]


def _claim(folder: Path) -> _Claim | None:
    """Take the lock of run folder ``folder`` if its run is dead; None if alive or gone.

    A folder whose lock file is missing is claimed without a lock: a live run keeps its lock
    file until its folder is deleted.
    """
    try:
        lock = try_lock(folder / LOCK, create=False)
    except FileNotFoundError:
        return (folder, None) if folder.is_dir() else None
    except OSError:
        return None
    return None if lock is None else (folder, lock)


def _claim_dead_runs(runs_dir: Path, log: Log) -> Iterator[_Claim]:
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
        claim = _claim(folder)
        if claim is not None:
            yield claim


def _locks_work(runs_dir: Path) -> bool:
    """Whether flock is enforced in ``runs_dir``: a second open of a locked file must be refused.

    Some network and FUSE filesystems accept every lock; there every run would look dead.
    """
    probe = runs_dir / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with probe.open("wb") as first, probe.open("rb") as second:
            fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
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


def _reap_claimed(claimed: list[_Claim], log: Log, *, grace: float, dry_run: bool) -> list[Reaped]:
    runs = {
        folder.name: (folder, read_ledger(folder, log))
        for folder, _ in claimed
        if not folder.name.startswith(".")
    }
    current_boot = boot_id()
    for run_id, (_, ledger) in runs.items():
        if ledger.header and ledger.header.boot_id != current_boot:
            log(f"noxlib: dead run {run_id} ran before the last reboot: nothing of it can run")
    # No dead run, no scan of the process table: the common pre hook costs a directory listing.
    reaped = _sweep(runs, log, grace=grace, live=False, dry_run=dry_run) if runs else []
    if dry_run:
        log(f"noxlib: dry run: would end {len(reaped)} process(es) of {len(claimed)} dead run(s)")
        return reaped
    for folder, _ in claimed:
        shutil.rmtree(folder, ignore_errors=True)
    if claimed:
        log(f"noxlib: reaped {len(reaped)} process(es) left by {len(claimed)} dead run(s)")
    return reaped


# --- the warden's handle ----------------------------------------------------------------------

STOP = b"s"
# How long stop() waits for the warden to exit before ending it (it is our child).
STOP_WAIT = 5.0


class Warden:
    """The runner's side of the dead man's switch: a warden process and the pipe it watches.

    The warden reads the pipe; a byte means "the run ended normally, go away", end of file
    without one means the runner died (SIGKILL, OOM, a crash) and it must reap the run.
    """

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self._pipe: int | None = pipe

    @classmethod
    def start(cls, run: Run, *, grace: float) -> Warden:
        """Write ``run``'s ledger header and start its warden, which will give each process of
        the run ``grace`` seconds between SIGTERM and SIGKILL should the runner die."""
        open_ledger(run)
        read_end, write_end = os.pipe()  # both close-on-exec: pytest must not hold the pipe
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "noxlib.warden",
                    "--run-dir",
                    str(run.dir),
                    "--grace",
                    f"{grace:g}",
                    "--pipe-fd",
                    str(read_end),
                ],
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                env=_warden_env(),
                # Its own session: Ctrl-C and a hangup of the terminal reach the runner, not
                # the process that must clean up after it.
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        with contextlib.suppress(psutil.Error, OSError):
            record_process(run.dir, process.pid, name="noxlib-warden")
        return cls(process, write_end)

    def stop(self) -> None:
        """Tell the warden the run ended normally and wait for it to exit."""
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):  # a warden already gone cannot be told
            os.write(self._pipe, STOP)
        os.close(self._pipe)
        self._pipe = None
        try:
            self.process.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _warden_env() -> dict[str, str]:
    # The warden imports the very noxlib this process did, wherever that came from.
    package_parent = str(Path(__file__).resolve().parent.parent)
    path = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
