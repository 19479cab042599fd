"""The ledger of a run: one JSON line per process the run started, proving it is ours later.

A pid and a start time name one process only within one boot, so each entry holds the boot id,
the start time in clock ticks (and as epoch seconds, where /proc is missing) and the uid. The
first line, the header, says when and in which boot the run started. Lines are appended by many
processes at once (xdist workers, servers, the runner) and read back by sweeps, which trust
nothing they cannot check: every line that does not hold up is skipped with a warning.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from noxlib.reaping.identity import boot_id, start_ticks
from noxlib.reaping.runs import Log, Run

LEDGER = "ledger.jsonl"
# A ledger line stays well under PIPE_BUF (4096), so one O_APPEND write lands whole even when
# many xdist workers append at once; longer lines in a ledger are not ours and are skipped.
MAX_LINE = 4000
MAX_NAME = 80
MAX_LEDGER_BYTES = 16 * 2**20
MAX_WARNINGS = 20


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
    record_found(run_dir, psutil.Process(pid), port=port, name=name)


def record_found(
    run_dir: Path, proc: psutil.Process, *, port: int | None = None, name: str | None = None
) -> None:
    """Like `record_process`, for a process already in hand as ``proc``: a sweep records what
    it found by other means, so that a sweep killed half-way leaves the proof for the next."""
    _append(run_dir, _entry_record(proc, run_dir.name, name, port))


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
