"""Shards that collect only their own files.

A shard that collects the whole suite to keep its share pays the whole collection: on a suite of
30,000 small tests that is about a sixth of each shard's time. When whole files balance the
shards about as well as single tests do, the plan is made per file from the durations file, and
each shard process collects only its files (``pytest_ignore_collect``).

Pure mechanics, like the planner it builds on. Every shard computes nothing here: the nox side
writes each shard's ``ShardFiles`` to a file, and the shard's pytest reads it. A file the
durations do not know (a new test file) is placed by a hash of its path, so exactly one shard
collects it without the shards talking to each other.

A suite whose time sits in one file (packaging: 30 of its 38 s in ``test_version.py``) cannot
balance by whole files. The local plan then splits that file by test function, and a function
that still weighs too much by test: every shard collects the split file, but pytest builds the
items of only its own functions (``pytest_pycollect_makeitem``), so the cost of parametrizing
the others is not paid. Only a function split by test is collected whole by every shard.
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
from noxlib.parts import Shard, ShardSpec, place_units, plan_digest, plan_shards, prices

# Whole files are used while the busiest shard of the per-file plan is predicted to take at most
# this much longer than the best a per-test plan could do.
BALANCE_SLACK = 1.05
# The files pytest must collect in every process: they are not test modules of one shard.
SHARED_FILES = ("conftest.py", "__init__.py")
# How many files or functions the local plan may split one level finer before it gives up and
# every shard collects everything: each step re-places the units, and a suite that needs more
# has its time spread so evenly that splitting by test costs little more.
MAX_REFINEMENTS = 16


def function_of(nodeid: str) -> str:
    """The test function of a node id, without its parameters (``a.py::T::t[1]`` ->
    ``a.py::T::t``)."""
    return nodeid.split("[", 1)[0]


def unit_in(nodeid: str, refined: frozenset[str]) -> str:
    """The unit the plan places ``nodeid`` with: its file, or, in a file split finer, its
    function, or, in a function split finer, the test itself."""
    path = file_of(nodeid)
    if path not in refined:
        return path
    function = function_of(nodeid)
    return nodeid if function in refined else function


@dataclass(frozen=True)
class ShardFiles:
    """The files (and, in a file split finer, the functions or tests) one shard collects.

    ``own``: the known units (``unit_in``) the plan gave this shard; ``known``: every file the
    plan placed, and the units of the files the local level split finer; ``refined``: those
    files, and the functions it split by test; ``positions``: this shard's place at each level
    split by file (outer first), which decides where a unit the plan does not know goes;
    ``plans``: the fingerprints of those levels' plans.
    """

    own: frozenset[str]
    known: frozenset[str]
    positions: tuple[ShardSpec, ...]
    plans: tuple[str, ...]
    refined: frozenset[str] = frozenset()

    def collects(self, path: str) -> bool:
        """Whether this shard collects ``path`` (relative to pytest's rootdir, with ``/``):
        the files it owns, the files split finer (it owns some of their tests), and the files
        that hold what every test may need (fixtures, packages)."""
        name = path.rsplit("/", 1)[-1]
        return name in SHARED_FILES or path in self.refined or self.owns(path)

    def owns(self, nodeid: str) -> bool:
        """Whether test ``nodeid`` (or every test of the file ``nodeid``) is this shard's.
        Every test, those of ``conftest.py`` and ``__init__.py`` too (their doctests), is
        owned by exactly one shard."""
        unit = unit_in(nodeid, self.refined)
        if unit in self.known:
            return unit in self.own
        if unit == file_of(nodeid):  # a file no level knows: placed by its path at each level
            return all(
                _bucket(unit, depth, spec.total) == spec.index - 1
                for depth, spec in enumerate(self.positions)
            )
        # New in a file the local level split finer, which lies in this CI shard's files.
        local = self.positions[-1]
        return _bucket(unit, len(self.positions) - 1, local.total) == local.index - 1

    def splits(self, nodeid: str) -> bool:
        """Whether ``nodeid`` lies in a file that the local level split finer."""
        return file_of(nodeid) in self.refined

    def builds(self, function: str) -> bool:
        """Whether pytest should build the items of test function ``function`` (a node id
        without parameters) of a file split finer: it owns the function, or the function is
        split by test (then the items are built, and kept by ``owns``)."""
        return function in self.refined or self.owns(function)

    def write(self, path: Path) -> None:
        record = {
            "own": sorted(self.own),
            "known": sorted(self.known),
            "positions": [str(p) for p in self.positions],
            "plans": list(self.plans),
            "refined": sorted(self.refined),
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
            frozenset(record.get("refined", ())),
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

    Every level named by ``levels`` must split by whole files, or none does: machines of one CI
    matrix decide alike from the same durations. The local level splits by file too when whole
    files stay within BALANCE_SLACK of the best split by test (always when ``keep_together`` is
    "module": that plan is per file anyway); otherwise, unless classes are kept together, it
    splits the costliest files by function, and the costliest functions by test, until the
    plan is within the slack; failing that every local shard collects the CI shard's files and
    they split them by test. Returns the shares, one per local shard, and whether the local
    level is left to split by test; None when nothing splits by file (every shard collects
    everything).
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
    local = _local_plan(tests, durations, count, keep_together) if count > 1 else None
    if local is None:
        if not outer:
            return None
        share = ShardFiles(frozenset(map(file_of, tests)), known, tuple(outer), tuple(plans))
        return FilePlan([share] * count, local_by_test=count > 1)
    plan, refined = local
    digest = plan_digest(plan)
    known_here = known | {unit_in(t, refined) for t in tests}
    shares = [
        ShardFiles(
            frozenset(unit_in(t, refined) for t in shard.tests),
            known_here,
            (*outer, ShardSpec(shard.index + 1, count)),
            (*plans, digest),
            refined,
        )
        for shard in plan
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
    return by_file if _busiest(by_file) <= BALANCE_SLACK * _bound(cost, count) else None


def _bound(cost: Mapping[str, float], count: int) -> float:
    longest, total = max(cost.values()), sum(cost.values())
    return max(longest, total / count)


def _local_plan(
    tests: Sequence[str], durations: Mapping[str, float], count: int, keep_together: str
) -> tuple[list[Shard], frozenset[str]] | None:
    """The local level's plan and the files and functions it split finer, or None."""
    if keep_together != "none":  # a class kept together must not be split by function
        plan = _file_plan(tests, durations, count, keep_together)
        return None if plan is None else (plan, frozenset())
    return _refined_plan(tests, durations, count) if tests else None


def _refined_plan(
    tests: Sequence[str], durations: Mapping[str, float], count: int
) -> tuple[list[Shard], frozenset[str]] | None:
    """Whole files, then the costliest unit split one level finer (a file into its functions,
    a function into its tests), one at a time, until every shard has a unit and the busiest is
    within BALANCE_SLACK of the bound; None after MAX_REFINEMENTS steps."""
    cost = prices(tests, durations)
    target = BALANCE_SLACK * _bound(cost, count)
    units: dict[str, list[str]] = {}
    for nodeid in sorted(tests):
        units.setdefault(file_of(nodeid), []).append(nodeid)
    refined: set[str] = set()
    for _ in range(MAX_REFINEMENTS + 1):
        in_order = sorted(units.values(), key=lambda members: members[0])
        plan = place_units(in_order, cost, count)
        if len(units) >= count and _busiest(plan) <= target:
            return plan, frozenset(refined)
        splittable = [(sum(cost[t] for t in v), k) for k, v in units.items() if len(v) > 1]
        if not splittable or len(refined) == MAX_REFINEMENTS:
            return None
        _, unit = max(splittable)  # the costliest; the greatest name on a tie: deterministic
        refined.add(unit)
        for nodeid in units.pop(unit):
            finer = nodeid if unit != file_of(nodeid) else function_of(nodeid)
            units.setdefault(finer, []).append(nodeid)
    return None
