"""Batches: each test file (or group) its own pytest process, and the line that says a batch
left the next one a dirty state.

Pure: the engine runs batches like any part; this module judges what one left behind (processes
the reaper ended, managed servers that died or were restarted) and what ``--resume`` skips.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from noxlib.partrun import PartOutcome
from noxlib.parts import PartFiles


@dataclass(frozen=True)
class BatchCheck:
    """How a batch ended and what it left: ``dirty_reasons`` name each leftover."""

    name: str
    status: str
    seconds: float
    dirty_reasons: tuple[str, ...] = field(default=())
    problem: str = ""  # how it ended early (a crash, its time limit), apart from dirt

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_reasons)

    @property
    def line(self) -> str:
        """``batch tests/gui/test_sims.py left 2 processes running (reaped); server gui
        restarted 1 time``; empty for a clean batch that passed."""
        if not self.dirty and self.status == "passed":
            return ""
        said = "; ".join(filter(None, (self.problem, *self.dirty_reasons)))
        return f"batch {self.name} {self.status}" + (f": {said}" if said else "")

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "dirty": self.dirty,
            "dirty_reasons": list(self.dirty_reasons),
            "problem": self.problem,
        }


def server_events(files: PartFiles) -> list[dict[str, object]]:
    """What the plugin noted about managed servers in a part: deaths, restarts, failures."""
    return [e for e in files.events() if e.get("event") == "server"]


def batch_check(
    outcome: PartOutcome, leftovers: Sequence[str], events: Iterable[Mapping[str, object]]
) -> BatchCheck:
    """The check of a batch that ended with ``outcome``: ``leftovers`` are the processes it left
    running (already ended by the reaper), ``events`` its server events."""
    reasons: list[str] = []
    if leftovers:
        names = ", ".join(sorted(set(leftovers)))
        count = len(leftovers)
        reasons.append(f"left {count} process{'es' if count > 1 else ''} running ({names}; reaped)")
    restarts: Counter[str] = Counter()
    for event in events:
        server = str(event.get("server", "?"))
        if event.get("what") == "restarted":
            restarts[server] += 1
        elif event.get("what") == "unrecoverable":
            reasons.append(f"server {server} could not be restarted: {event.get('why', '')}")
        elif event.get("what") == "died":
            reasons.append(f"server {server} {event.get('why', 'died')}")
    for server, times in sorted(restarts.items()):
        reasons.append(f"server {server} restarted {times} time{'s' if times > 1 else ''}")
    return BatchCheck(
        outcome.part.name, outcome.status, outcome.seconds, tuple(reasons), outcome.problem
    )


def previous_batches(
    history: Path, session: str, groups: Sequence[str]
) -> tuple[str, dict[str, str]] | None:
    """The last batched run of ``session`` with ``groups`` in the jsonl ``history``: its run id
    and each batch's status; None when there is none."""
    try:
        lines = history.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for raw in reversed(lines):
        try:
            run = json.loads(raw)
        except ValueError:
            continue
        if run.get("session") != session or run.get("groups") != list(groups):
            continue
        found = run.get("batches")
        if isinstance(found, list) and found:
            statuses = {str(b.get("name")): str(b.get("status")) for b in found}
            return str(run.get("run_id", "?")), statuses
    return None
