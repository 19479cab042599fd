"""The sweep: find a run's processes with proof of identity, and end them.

A process belongs to run R only when one of these proves it:

* its environment holds ``NOXLIB_RUN_ID`` equal to R's id (exact match, never a substring);
* R's ledger names it, and the live process has the entry's boot, start time and uid (and, when
  its environment is readable, no other run's id);
* it descends from a process proven by one of the above, and carries no other run's id.

Being a child of the runner (nox) is no evidence either: a noxfile's own helpers and other
sessions' processes are nox's children too, and are not the run's. Name, command line, port
and process group are never evidence: they are what neighbours share.
The current process, its ancestors and pid 1 are never ended. Only processes of our own uid are
considered. Ending escalates like nox's popen: SIGTERM, a grace period, SIGKILL, bounded waits.

Three callers: ``reap_run`` (post hook of a live run), ``reap_stale_runs`` (pre hook and
``nox -s reap``, for runs whose lock is free, i.e. dead ones) and the warden
(``reap_dead_run``, the moment its runner dies). The ledger is in `noxlib.reaping.ledger`, the
escalation in `noxlib.reaping.processes`; this module imports neither the warden nor its
handle: the warden imports it, once its runner has died.

Longer than 400 lines, and left so: it is one behaviour, finding and ending a run's processes,
and its proofs of identity must be read together to be trusted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from noxlib.reaping import processes
from noxlib.reaping.identity import boot_id, created_at, start_ticks
from noxlib.reaping.ledger import Entry, Ledger, read_ledger, record_found
from noxlib.reaping.runs import (
    PART_NAME_ENV,
    RUN_ID_ENV,
    RUNS,
    Claim,
    Log,
    Run,
    claim_dead_runs,
    claim_run,
    release,
)

MAX_COMMAND = 400
# New processes can appear while we end others (a shell loop, a fixture's teardown): look again
# this many times at most.
ROUNDS = 3
# A process can only belong to a run if it started after the run did; clocks are compared with
# this much slack because epoch create times can be off by a second.
START_SLACK = 2.0
WAIT_STEP = 0.01


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


def _protected(spare: Collection[int] = ()) -> set[int]:
    """Pids never ended whatever a ledger says: 0, 1, ourselves, our ancestors and ``spare``."""
    protected = {0, 1, os.getpid(), *spare}
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
    return created_at(proc, entry.create_time)  # no /proc: the epoch time must do


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


def _descendants(roots: set[int], run_id: str, seen: dict[int, _Seen]) -> Iterator[_Target]:
    """Processes below ``roots`` (pids of run ``run_id``), except other runs' processes."""
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
            yield _Target(s.proc, run_id, f"child of pid {parent}, which is the run's")


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
    for target in _descendants(set(found), run_id, seen):
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


def _end(targets: list[_Target], grace: float, log: Log) -> list[Reaped]:
    """SIGTERM every target at once, wait ``grace`` seconds, SIGKILL the rest; log each one."""
    described = [_describe(t.proc) for t in targets]
    endings = processes.end([t.proc for t in targets], grace)
    reaped = []
    for t, (name, command), ending in zip(targets, described, endings, strict=True):
        row = Reaped(t.proc.pid, name, command, t.run_id, t.reason, ending.outcome)
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
    runs: dict[str, tuple[Path, Ledger]],
    log: Log,
    *,
    grace: float,
    live: bool,
    dry_run: bool,
    spare: Collection[int] = (),
) -> list[Reaped]:
    """Find and end the processes of ``runs`` (run id -> folder and ledger), in rounds."""
    current_boot = boot_id()
    protected = _protected(spare)
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


def _still_running(runs: dict[str, tuple[Path, Ledger]], *, live: bool) -> dict[str, list[_Target]]:
    """Run id -> the processes of that run still running (runs with none are left out)."""
    seen = _scan()
    current_boot, protected = boot_id(), _protected()
    found = {}
    for run_id, (_, ledger) in runs.items():
        targets = _find(
            run_id, ledger, seen, live=live, current_boot=current_boot, protected=protected
        )
        if targets:
            found[run_id] = targets
    return found


def _forget(folder: Path, survivors: list[_Target], log: Log) -> bool:
    """Delete run folder ``folder`` unless ``survivors`` (its processes still running) says a
    process it names may still run: then keep it, ledger and all, for the next sweep, with every
    survivor recorded in the ledger and named on ``log``. Returns whether it was deleted."""
    if not survivors:
        shutil.rmtree(folder, ignore_errors=True)
        return True
    for target in survivors:
        _note(folder, target)
        name, command = _describe(target.proc)
        row = Reaped(target.proc.pid, name, command, target.run_id, target.reason, "still running")
        log(f"{row.line()}; ours because {target.reason}")
    log(
        f"noxlib: kept {folder} and its ledger: {len(survivors)} process(es) of run "
        f"{folder.name} still running; the next run's pre hook or `nox -s reap` ends them"
    )
    return False


def _note(run_dir: Path, target: _Target) -> None:
    """Record in the ledger a process found by other means, so a sweep that is killed half-way
    leaves the proof for the next one."""
    if target.reason.startswith("ledger"):
        return
    # A process or folder already gone leaves nothing to prove.
    with contextlib.suppress(OSError, psutil.Error):
        record_found(run_dir, target.proc)


# --- the hooks --------------------------------------------------------------------------------


def reap_part(run: Run, part: str, log: Log, *, grace: float) -> list[Reaped]:
    """End what part ``part`` of the live ``run`` left running after its pytest process ended
    (a batch's leftovers), logging each on ``log``; return them.

    A process is the part's when its environment holds the run's exact id and the part's
    name (``NOXLIB_PART_NAME``), which every process the part started inherits, setsid'ed
    ones too. Servers shared by the run carry no part name and are left alone.
    """
    protected = _protected()
    targets = []
    for s in _scan().values():
        if s.env_run_id != run.run_id or s.proc.pid in protected:
            continue
        with contextlib.suppress(psutil.Error):
            if s.proc.environ().get(PART_NAME_ENV) == part:
                reason = f"{RUN_ID_ENV} and {PART_NAME_ENV}={part} are in its environment"
                targets.append(_Target(s.proc, run.run_id, reason))
    for target in targets:
        _note(run.dir, target)
    return _end(targets, grace, log)


def reap_run(run: Run, log: Log, *, grace: float, spare: Collection[int] = ()) -> list[Reaped]:
    """End every leftover process of the live ``run`` (the post hook), logging each on ``log``.

    Its processes are those carrying its id in their environment, those its ledger proves, and
    their descendants that carry no other run's id; never the current process, its ancestors,
    its other children, or the pids in ``spare`` (the run's warden, which keeps watching while
    this runs). Each gets SIGTERM, then SIGKILL if still running ``grace`` seconds later.
    """
    reaped = _sweep(
        {run.run_id: (run.dir, read_ledger(run.dir, log))},
        log,
        grace=grace,
        live=True,
        dry_run=False,
        spare=spare,
    )
    if reaped:
        log(f"noxlib: reaped {len(reaped)} leftover process(es) of run {run.run_id}")
    else:
        log(f"noxlib: no leftover process of run {run.run_id}")
    return reaped


def finish_run(run: Run, log: Log) -> bool:
    """Forget the live ``run`` at its end: delete its folder, then drop its lock.

    Only once nothing of the run still runs: a process its ledger or its id names that is
    still running (one the post hook could not end, or the post hook did not run) keeps the
    folder and its ledger, and the lock is dropped, so that the next sweep (the next run's pre
    hook, or ``nox -s reap``) finds a dead run and ends the rest. Each survivor is named on
    ``log``. Returns whether the folder was deleted.
    """
    try:
        runs = {run.run_id: (run.dir, read_ledger(run.dir, log))}
        survivors = _still_running(runs, live=True).get(run.run_id, [])
        return _forget(run.dir, survivors, log)
    finally:
        run.lock_file.close()


def reap_stale_runs(
    state_dir: Path, log: Log, *, grace: float, dry_run: bool = False
) -> list[Reaped]:
    """End what dead runs under ``state_dir`` left running, then forget those runs.

    A run is dead when its lock (``state_dir/runs/<id>/lock``) can be taken; live runs hold
    theirs, so they are never touched. Only processes whose identity is proven are ended (see
    the module docstring), with SIGTERM, ``grace`` seconds, SIGKILL. With ``dry_run`` nothing
    is ended or deleted: each process that would be is logged on ``log`` with why it is ours.
    """
    claimed = list(claim_dead_runs(state_dir / RUNS, log))
    try:
        return _reap_claimed(claimed, log, grace=grace, dry_run=dry_run)
    finally:
        release(claimed)


def reap_dead_run(run_dir: Path, log: Log, *, grace: float, wait: float = 10.0) -> list[Reaped]:
    """End the processes of the run in ``run_dir`` once its runner is dead, then forget it.

    The warden's job. It waits up to ``wait`` seconds for the run's lock (the runner may still
    be exiting); a run that keeps its lock is alive and left alone, a folder already deleted
    means the run finished normally.
    """
    deadline = time.monotonic() + wait
    while True:
        claim = claim_run(run_dir)
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
        release([claim])


def _reap_claimed(claimed: list[Claim], log: Log, *, grace: float, dry_run: bool) -> list[Reaped]:
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
    survivors = _still_running(runs, live=False) if runs else {}
    for folder, _ in claimed:
        _forget(folder, survivors.get(folder.name, []), log)
    if claimed:
        log(f"noxlib: reaped {len(reaped)} process(es) left by {len(claimed)} dead run(s)")
    return reaped
