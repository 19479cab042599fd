"""The order a run's pytest processes keep: what ``--affected`` leaves out (and leaves
uncollected), and the last run's failures first, handed over in files. Pure; the plugin's
``RunOrder`` applies it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.durations import file_of
from noxlib.idfile import write_ids
from noxlib.outcomes import FAILING
from noxlib.parts import FIRST_ENV, SKIP_ENV, UNCOLLECTED_ENV


def last_failures(history: Sequence[Mapping[str, object]], session: str) -> list[str]:
    """The node ids that failed (failed, error, timeout, crashed) in the last recorded run of
    ``session``; [] when it passed or never ran. An order-dependent failure is left where it
    was: run first, it would pass for want of its polluter, and the next run fail again."""
    for run in reversed(history):
        if run.get("session") != session:
            continue
        failures = run.get("failures")
        if not isinstance(failures, list):
            return []
        return [
            str(f["nodeid"])
            for f in failures
            if isinstance(f, dict)
            and "nodeid" in f
            and f.get("status", "failed") in FAILING
            and f.get("triage") != "order-dependent"
        ]
    return []


def run_first(nodeids: Sequence[str], first: Collection[str]) -> list[int]:
    """The order (indexes into ``nodeids``) that runs the ``first`` tests before the rest, each
    part keeping its order. A file in ``first`` (a collection error's id) brings all its tests."""
    wanted = set(first)
    early = [i for i, n in enumerate(nodeids) if n in wanted or file_of(n) in wanted]
    chosen = set(early)
    return early + [i for i in range(len(nodeids)) if i not in chosen]


@dataclass(frozen=True)
class TestOrder:
    """What the pytest processes of one run leave out and run first, handed over in files."""

    __test__ = False  # not a pytest test class

    skip: frozenset[str] = frozenset()
    first: tuple[str, ...] = ()
    uncollected: tuple[str, ...] = ()  # absolute paths of files pytest need not collect

    def env(self, folder: Path) -> dict[str, str]:
        """Write the lists into ``folder`` and return the variables that name them."""
        env: dict[str, str] = {}
        if self.skip:
            env[SKIP_ENV] = str(write_ids(folder / "affected-skip.jsonl", sorted(self.skip)))
        if self.uncollected:
            path = folder / "affected-uncollected.jsonl"
            env[UNCOLLECTED_ENV] = str(write_ids(path, self.uncollected))
        if self.first:
            env[FIRST_ENV] = str(write_ids(folder / "run-first.jsonl", self.first))
        return env
