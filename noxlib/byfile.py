"""Shards that collect only their own files.

A shard that collects the whole suite to keep its share pays the whole collection: on a suite of
30,000 small tests that is about a sixth of each shard's time. When whole files balance the
shards about as well as single tests do, the plan is made per file from the durations file, and
each shard process collects only its files (``pytest_ignore_collect``).

Pure mechanics, like the planner it builds on. Every shard computes nothing here: the nox side
writes each shard's ``ShardFiles`` to a file, and the shard's pytest reads it. A file the
durations do not know (a new test file) is placed by a hash of its path, so exactly one shard
collects it without the shards talking to each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from noxlib.durations import file_of
from noxlib.files import write_atomic
from noxlib.parts import Shard, ShardSpec, plan_digest, plan_shards, prices

# Whole files are used while the busiest shard of the per-file plan is predicted to take at most
# this much longer than the best a per-test plan could do.
BALANCE_SLACK = 1.05
# The files pytest must collect in every process: they are not test modules of one shard.
SHARED_FILES = ("conftest.py", "__init__.py")


@dataclass(frozen=True)
class ShardFiles:
    """The files one shard collects.

    ``own``: the known files the plan gave this shard; ``known``: every file the plan placed;
    ``positions``: this shard's place at each level split by file (outer first), which decides
    where a file the plan does not know goes; ``plans``: the fingerprints of those levels' plans.
    """

    own: frozenset[str]
    known: frozenset[str]
    positions: tuple[ShardSpec, ...]
    plans: tuple[str, ...]

    def collects(self, path: str) -> bool:
        """Whether this shard collects ``path`` (relative to pytest's rootdir, with ``/``):
        the files it owns, and the files that hold what every test may need (fixtures,
        packages)."""
        return path.rsplit("/", 1)[-1] in SHARED_FILES or self.owns(path)

    def owns(self, path: str) -> bool:
        """Whether the tests of file ``path`` are this shard's. Every file, ``conftest.py``
        and ``__init__.py`` too (their doctests), is owned by exactly one shard."""
        if path in self.known:
            return path in self.own
        return all(
            _bucket(path, depth, spec.total) == spec.index - 1
            for depth, spec in enumerate(self.positions)
        )

    def write(self, path: Path) -> None:
        record = {
            "own": sorted(self.own),
            "known": sorted(self.known),
            "positions": [str(p) for p in self.positions],
            "plans": list(self.plans),
        }
        write_atomic(path, json.dumps(record) + "\n")

    @classmethod
    def read(cls, path: Path) -> ShardFiles:
        record = json.loads(path.read_text(encoding="utf-8"))
        positions = []
        for text in record["positions"]:
            index, total = text.split("/")
            positions.append(ShardSpec(int(index), int(total)))
        return cls(
            frozenset(record["own"]),
            frozenset(record["known"]),
            tuple(positions),
            tuple(record["plans"]),
        )


class FilePlan(NamedTuple):
    """The files of each local shard, and whether the local level still splits the CI shard's
    files by test (every local shard then collects them all and keeps its share of tests)."""

    files: list[ShardFiles]
    local_by_test: bool


def _bucket(path: str, depth: int, total: int) -> int:
    # A stable hash (not Python's salted hash()): every process and machine agrees.
    digest = hashlib.sha256(f"{depth}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def _busiest(plan: Sequence[Shard]) -> float:
    return max(shard.predicted for shard in plan)


def split_by_file(
    durations: Mapping[str, float],
    levels: Sequence[ShardSpec],
    count: int,
    keep_together: str = "none",
) -> FilePlan | None:
    """The files of each of ``count`` local shards, within the CI shard named by ``levels``
    (outer first, may be empty), planned from ``durations`` (the tests the run will collect).

    Every level named by ``levels`` must split by file, or none does: machines of one CI matrix
    decide alike from the same durations. The local level splits by file too when whole files
    stay within BALANCE_SLACK of the best split by test (always when ``keep_together`` is
    "module": that plan is per file anyway); otherwise every local shard collects the CI
    shard's files and they split them by test. Returns the shares,
    one per local shard, and whether the local level is left to split by test; None when
    nothing splits by file (every shard collects everything).
    """
    tests = sorted(durations)
    known = frozenset(file_of(t) for t in tests)
    outer: list[ShardSpec] = []
    plans: list[str] = []
    for level in levels:
        chosen = _file_plan(tests, durations, level.total, keep_together)
        if chosen is None:
            return None
        plans.append(plan_digest(chosen))
        outer.append(level)
        tests = list(chosen[level.index - 1].tests)
    local = _file_plan(tests, durations, count, keep_together) if count > 1 else None
    if local is None:
        if not outer:
            return None
        share = ShardFiles(frozenset(map(file_of, tests)), known, tuple(outer), tuple(plans))
        return FilePlan([share] * count, local_by_test=count > 1)
    digest = plan_digest(local)
    shares = [
        ShardFiles(
            frozenset(map(file_of, shard.tests)),
            known,
            (*outer, ShardSpec(shard.index + 1, count)),
            (*plans, digest),
        )
        for shard in local
    ]
    return FilePlan(shares, local_by_test=False)


def _file_plan(
    tests: Sequence[str], durations: Mapping[str, float], count: int, keep_together: str
) -> list[Shard] | None:
    """The per-file plan of ``tests`` over ``count`` shards, or None when it would leave a shard
    without a file or balance worse than BALANCE_SLACK times what splitting finer could reach.

    Finer means single tests, whose best plan is at least max(longest test, total / count):
    that bound is the yardstick (planning by test as well would cost as much again). Kept
    together by module, the per-file plan is the plan."""
    if len({file_of(t) for t in tests}) < count:
        return None
    by_file = plan_shards(tests, durations, count, "module")
    if keep_together == "module":
        return by_file
    cost = prices(tests, durations)
    longest, total = max(cost.values()), sum(cost.values())
    bound = max(longest, total / count)
    return by_file if _busiest(by_file) <= BALANCE_SLACK * bound else None
