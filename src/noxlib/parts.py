"""The tests cut into parts: the shard planner, and a part's folder and selection.

Pure mechanics (json and statistics only). Every shard process imports this module to pick its
own share of the tests it collected; the nox side imports it to predict a run's time and to
explain the engine it chose. Both compute the same plan from the same inputs, so N processes, or
N CI machines, never need to talk to each other to split a suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.durations import file_of, read_durations
from noxlib.errors import UsageError
from noxlib.idfile import read_ids, write_ids
from noxlib.jsonlines import values

# What a test costs when nothing is known about it or its file.
UNKNOWN_SECONDS = 1.0
KEEP_TOGETHER = ("none", "module", "class")


@dataclass(frozen=True)
class Shard:
    """One of N parts of a suite: its tests (sorted by node id) and their predicted seconds."""

    index: int
    tests: tuple[str, ...]
    predicted: float


def prices(tests: Sequence[str], durations: Mapping[str, float]) -> dict[str, float]:
    """What each test is expected to cost: its recorded seconds; for a test never recorded, the
    median of its file's recorded tests, else the median of all recorded tests, else 1 s."""
    price = pricer(durations)
    return {t: price(t) for t in tests}


def pricer(durations: Mapping[str, float]) -> Callable[[str], float]:
    """The price of any node id, as ``prices`` gives it, from ``durations``."""
    by_file: dict[str, list[float]] = {}
    for nodeid, seconds in durations.items():
        by_file.setdefault(file_of(nodeid), []).append(seconds)
    overall = statistics.median(durations.values()) if durations else UNKNOWN_SECONDS
    file_medians = {path: statistics.median(values) for path, values in by_file.items()}

    def price(nodeid: str) -> float:
        found = durations.get(nodeid)
        return found if found is not None else file_medians.get(file_of(nodeid), overall)

    return price


def unit_of(nodeid: str, keep_together: str) -> str:
    """The unit a test is scheduled with: itself, its module, or its class (else itself)."""
    if keep_together == "module":
        return file_of(nodeid)
    if keep_together == "class":
        parts = nodeid.split("::")
        return "::".join(parts[:-1]) if len(parts) > 2 else nodeid
    return nodeid


def plan_shards(
    tests: Iterable[str],
    durations: Mapping[str, float],
    count: int,
    keep_together: str = "none",
) -> list[Shard]:
    """Split ``tests`` into ``count`` shards of about equal predicted time.

    Longest processing time first: units (tests, or modules or classes kept together) sorted by
    node id, then by cost, longest first, each to the least loaded shard (then the one with the
    fewest tests, then the lowest index). The result depends only on the arguments, so every
    process and every machine computes the same plan. No shard is left empty while there are at
    least ``count`` tests: keep-together gives way (the costliest units are split) when there
    are fewer units than shards.
    """
    if count < 1:
        raise ValueError(f"a plan needs at least one shard, not {count}")
    ordered = sorted(set(tests))
    cost = prices(ordered, durations)
    units = _units(ordered, keep_together, cost, count)
    return place_units(list(units.values()), cost, count)


def place_units(
    units: Sequence[Sequence[str]], cost: Mapping[str, float], count: int
) -> list[Shard]:
    """Longest processing time first: ``units`` (each a list of node ids that go together),
    given in the order of their first node id, ranked by cost, longest first, each to the least
    loaded of ``count`` shards (then the one with the fewest tests, then the lowest index)."""
    # sorted() is stable: equal costs stay in node id order.
    ranked = sorted(((sum(cost[t] for t in unit), unit) for unit in units), key=lambda u: -u[0])
    heap = [(0.0, 0, index) for index in range(count)]
    members: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for unit_cost, unit_tests in ranked:
        load, size, index = heapq.heappop(heap)
        members[index].extend(unit_tests)
        loads[index] = load + unit_cost
        heapq.heappush(heap, (loads[index], size + len(unit_tests), index))
    return [Shard(i, tuple(sorted(members[i])), loads[i]) for i in range(count)]


def _units(
    ordered: list[str], keep_together: str, cost: Mapping[str, float], count: int
) -> dict[str, list[str]]:
    units: dict[str, list[str]] = {}
    for nodeid in ordered:
        units.setdefault(unit_of(nodeid, keep_together), []).append(nodeid)
    # Fewer units than shards: split the costliest ones until every shard can get one.
    while len(units) < min(count, len(ordered)):
        key = max(
            (k for k, v in units.items() if len(v) > 1),
            key=lambda k: (sum(cost[t] for t in units[k]), k),
        )
        for nodeid in units.pop(key):
            units[nodeid] = [nodeid]
    # In node id order, so that equal costs are placed by node id (the ranking sort is stable).
    return dict(sorted(units.items(), key=lambda item: item[1][0]))


def plan_digest(shards: Sequence[Shard]) -> str:
    """A short fingerprint of a whole plan: shards of one run (or one CI matrix) must agree."""
    digest = hashlib.sha256()
    for shard in shards:
        digest.update(f"{shard.index}\0".encode())
        digest.update("\0".join(shard.tests).encode())
        digest.update(b"\1")
    return digest.hexdigest()[:16]


def ids_digest(ids: Iterable[str]) -> str:
    """A short fingerprint of a set of node ids (what a process collected)."""
    return hashlib.sha256("\0".join(sorted(ids)).encode()).hexdigest()[:16]


_SHARD = re.compile(r"^([0-9]+)/([0-9]+)$")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based) of ``total``."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str, source: str) -> ShardSpec:
    """``"K/N"`` with 1 <= K <= N, from ``text`` that came from ``source``."""
    match = _SHARD.match(text.strip())
    if match and 1 <= int(match.group(1)) <= int(match.group(2)):
        return ShardSpec(int(match.group(1)), int(match.group(2)))
    raise UsageError(
        f"Invalid shard {text!r} from {source}: expected K/N with 1 <= K <= N, e.g. "
        "NOXLIB_SHARD=2/3 runs the second of three shards."
    )


def select_share(
    tests: Sequence[str],
    durations: Mapping[str, float],
    levels: Sequence[ShardSpec],
    keep_together: str = "none",
) -> tuple[set[str], list[list[Shard]]]:
    """The tests of the shard named by ``levels`` (global K/N first, then a local k/n within
    it), and the plan made at each level (for fingerprints)."""
    share: Iterable[str] = tests
    plans: list[list[Shard]] = []
    for level in levels:
        plans.append(plan_shards(share, durations, level.total, keep_together))
        share = plans[-1][level.index - 1].tests
    return set(share), plans


# --- one part's folder: what its pytest process and the engine tell each other ----------------

PART_DIR_ENV = "NOXLIB_PART_DIR"
# Set in a run that records the --affected map: each test becomes a coverage context.
CONTEXTS_ENV = "NOXLIB_TEST_CONTEXTS"
# A file of node ids the run leaves out (--affected), and one of node ids to run first.
SKIP_ENV = "NOXLIB_SKIP_FILE"
FIRST_ENV = "NOXLIB_FIRST_FILE"
# A file of the test files --affected leaves out whole: pytest does not even collect them.
UNCOLLECTED_ENV = "NOXLIB_UNCOLLECTED_FILE"
# "1": gc.freeze() once the tests are collected (tool.noxlib.gc-freeze; "0" to keep gc as is).
GC_FREEZE_ENV = "NOXLIB_GC_FREEZE"
# "K/N" levels, global first ("2/3 1/2": local shard 1 of 2 within CI shard 2 of 3).
SHARDS_ENV = "NOXLIB_SHARDS"
DURATIONS_ENV = "NOXLIB_DURATIONS"
KEEP_TOGETHER_ENV = "NOXLIB_KEEP_TOGETHER"
# Set in the pytest process of a batch: a server that cannot start stops the batch at once.
BATCH_ENV = "NOXLIB_BATCH"
# A shard that splits by file: the file holding its ShardFiles (byfile.py).
SHARD_FILES_ENV = "NOXLIB_SHARD_FILES"
# A file of node ids: run exactly these (what a dead process left, a batch's remainder).
SELECT_ENV = "NOXLIB_SELECT_FILE"


@dataclass(frozen=True)
class PartFiles:
    """The folder of one part: its pytest process writes results and events there, the
    engine reads them (and writes the tests to rerun after a crash)."""

    dir: Path

    @property
    def results(self) -> Path:
        return self.dir / "results.jsonl"

    @property
    def meta(self) -> Path:
        return self.dir / "meta.jsonl"

    @property
    def share(self) -> Path:
        """The ids this part's process runs, in pytest's run order (an id file)."""
        return self.dir / "share.jsonl"

    @property
    def collected(self) -> Path:
        """Every id its process collected, before any selection (an id file)."""
        return self.dir / "collected.jsonl"

    @property
    def listed(self) -> Path:
        """Under ``--collect-only``: the ids pytest would run (an id file); the share is
        empty, since nothing runs."""
        return self.dir / "listed.jsonl"

    @property
    def left(self) -> Path:
        """The ids its process collected in a file split by function and left to the other
        shards (an id file): the books check that one of them ran each."""
        return self.dir / "left.jsonl"

    @property
    def files_left(self) -> Path:
        """The files a shard by file was asked about and left to its machine's other shards
        (an id file of paths); ``files_kept`` those it took. The books check that each file
        one left, another took."""
        return self.dir / "files-left.jsonl"

    @property
    def files_kept(self) -> Path:
        return self.dir / "files-kept.jsonl"

    @property
    def started(self) -> Path:
        """The ids whose test began, one line as each begins (an id file): the test a dead
        process was running is the last one started that has no result."""
        return self.dir / "started.jsonl"

    @property
    def log(self) -> Path:
        return self.dir / "output.log"

    @property
    def select(self) -> Path:
        return self.dir / "select.jsonl"

    @property
    def junit(self) -> Path:
        return self.dir / "junit.xml"

    def junit_files(self) -> list[Path]:
        """The JUnit XML of every process of the part (one per process, see `set_aside`)."""
        return sorted(self.dir.glob("junit*.xml"))

    def set_aside(self, attempt: int) -> None:
        """Keep what process ``attempt`` wrote (its JUnit XML, its share) from being
        overwritten by the next process."""
        with contextlib.suppress(FileNotFoundError):
            self.junit.rename(self.dir / f"junit-{attempt}.xml")
        with contextlib.suppress(FileNotFoundError):
            self.share.rename(self.dir / f"share-{attempt}.jsonl")

    def expected(self) -> list[str]:
        """Every id a process of this part set out to run: the union of their shares (a
        relaunched process runs what its dead predecessor had not reached)."""
        ids: dict[str, None] = {}
        for path in sorted(self.dir.glob("share*.jsonl")):
            ids.update(dict.fromkeys(read_ids(path)))
        return list(ids)

    def first_event(self, kind: str) -> dict[str, object]:
        """The part's first event of ``kind`` ({} when none): its first process's."""
        return next((e for e in self.events() if e.get("event") == kind), {})

    def selected_event(self) -> dict[str, object]:
        """The first "selected" event of the part: how many tests it took, how, its plans."""
        return self.first_event("selected")

    def collected_digest(self) -> str:
        """The digest of what the part's first process collected ("" when unknown)."""
        return str(self.first_event("collected").get("digest", ""))

    def collection_seconds(self) -> float | None:
        """How long the part's first process took to collect, from its plugin's start (None
        when it never finished collecting)."""
        seconds = self.first_event("collected").get("seconds")
        return float(seconds) if isinstance(seconds, (int, float)) else None

    def selected(self) -> bool:
        """Whether a process of this part got as far as choosing its tests."""
        return any(e.get("event") == "selected" for e in self.events())

    def event(self, record: Mapping[str, object]) -> None:
        with self.meta.open("a", encoding="utf-8") as out:
            out.write(json.dumps(dict(record)) + "\n")

    def events(self, start: int = 0) -> list[dict[str, object]]:
        """Events written at or after byte ``start`` of the meta file (a torn line skipped)."""
        try:
            with self.meta.open("rb") as handle:
                handle.seek(start)
                data = handle.read()
        except FileNotFoundError:
            return []
        return [record for record in values(data) if isinstance(record, dict)]

    def write_collected(self, ids: Sequence[str], seconds: float, root: str = "") -> None:
        write_ids(self.collected, ids)
        files = sorted({file_of(i) for i in ids})
        self.event(
            {
                "event": "collected",
                "count": len(ids),
                "digest": ids_digest(portable(ids, root)),
                "files": files,
                "seconds": round(seconds, 3),
            }
        )

    def write_share(self, ids: Sequence[str], event: Mapping[str, object]) -> None:
        write_ids(self.share, ids)
        self.event(event)


# What only a part's own pytest process reads; children of it must not inherit it.
# (A pytest that a test starts must not leave out, reorder or re-context its own tests.)
PART_ONLY = (
    PART_DIR_ENV,
    SHARDS_ENV,
    DURATIONS_ENV,
    KEEP_TOGETHER_ENV,
    SELECT_ENV,
    BATCH_ENV,
    SHARD_FILES_ENV,
    CONTEXTS_ENV,
    SKIP_ENV,
    FIRST_ENV,
    UNCOLLECTED_ENV,
)
# What a part's process hands on to its xdist workers (they run its tests).
WORKER_SETTINGS = (CONTEXTS_ENV, SKIP_ENV, FIRST_ENV, UNCOLLECTED_ENV)


def take_part_env(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove the part variables from ``environ`` (a process's own) and return them."""
    return {key: environ.pop(key) for key in PART_ONLY if key in environ}


# What stands for the checkout's folder in ids that hold it (some suites' parameters do).
ROOT_MARK = "<rootdir>"


def portable(ids: Iterable[str], root: str) -> dict[str, str]:
    """Each id with the checkout's folder ``root`` (pytest's rootdir) written as ROOT_MARK,
    mapped to the id itself: CI machines check out at paths of their own, and must plan alike
    and fingerprint alike all the same."""
    if not root:
        return {i: i for i in ids}
    return {i.replace(root, ROOT_MARK): i for i in ids}


def choose(
    part: PartFiles, ids: Sequence[str], env: Mapping[str, str], root: str = ""
) -> tuple[set[str], dict[str, object]]:
    """Which of the collected ``ids`` this part runs, from its environment ``env``, and the
    "selected" event that says so (count, predicted seconds, the plan's fingerprint).
    ``root`` is pytest's rootdir: the plan is made over `portable` ids."""
    durations = read_durations(Path(env[DURATIONS_ENV])) if env.get(DURATIONS_ENV) else {}
    event: dict[str, object] = {"event": "selected"}
    if env.get(SELECT_ENV):
        wanted = set(read_ids(Path(env[SELECT_ENV])))
        keep = {i for i in ids if i in wanted}
        event["how"] = "list"
    elif env.get(SHARDS_ENV):
        levels = [parse_shard(t, SHARDS_ENV) for t in env[SHARDS_ENV].split()]
        keep_together = env.get(KEEP_TOGETHER_ENV, "none")
        canonical = portable(ids, root)
        share, plans = select_share(list(canonical), durations, levels, keep_together)
        keep = {canonical[i] for i in share}
        event.update(how="shard", shard=str(levels[-1]), plans=[plan_digest(p) for p in plans])
    else:
        keep = set(ids)
        event["how"] = "all"
    cost = prices(sorted(keep), durations)
    event.update(count=len(keep), predicted=round(sum(cost.values()), 3))
    return keep, event
