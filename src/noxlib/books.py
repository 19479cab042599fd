"""The run's books: every test a part set out to run has exactly one final outcome.

Every run and every ``combine`` ends by balancing them. A *source* is one part of a run (the
serial process, a shard, a batch, the xdist controller) or one CI shard of a matrix: the ids it
set out to run (its share, written once pytest had finished collecting and selecting) and the
results it reported. Then:

- a test with no result is ``not-run``, a real outcome, with the reason its source gives (its
  time limit, the relaunch cap, ``-x``, the run interrupted);
- a test with two results (two parts ran it, or disagree) is a *conflict*: the worse outcome is
  its outcome, and the books name the conflict;
- a source that never got as far as choosing its tests is *unselected*: nobody can say which
  tests it lost, so the run fails naming it.

Any of the three fails the run; ``tolerate-flaky`` never covers them. A collection error is a
result of its file: every shard that collects the file reports it, and it is one error.

Pure: sources come in as values, the results as dictionaries (one line of a results file).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from noxlib.outcomes import Outcome, parse, worst
from noxlib.words import plural, some

Result = dict[str, object]
# How many ids a problem line names before it says "and N more".
SHOWN_IDS = 5


@dataclass(frozen=True)
class Source:
    """One part of a run, or one CI shard: ``expected`` the ids it set out to run,
    ``results`` what it reported, ``unfinished`` why some may lack a result ("" when nothing
    explains it), ``selected`` whether it got as far as choosing its tests, and ``problem``
    why not."""

    name: str
    expected: Sequence[str]
    results: Sequence[Result]
    unfinished: str = ""
    selected: bool = True
    problem: str = ""
    # A digest of what it collected, when its share was cut from a collection every such source
    # must agree on (shards by test): "" otherwise.
    collection: str = ""
    # Ids it collected and left to another source of the run (a file split by function between
    # shards): each must be in some source's share, or it ran nowhere.
    left: Sequence[str] = ()
    # Files it left to the other shards of its machine, and files it took (shards by file):
    # a file every shard left ran nowhere, and no id of it is known.
    files_left: Sequence[str] = ()
    files_kept: Sequence[str] = ()


@dataclass(frozen=True)
class Conflict:
    """A test with more than one result: (source, outcome) of each, and the outcome kept."""

    nodeid: str
    seen: tuple[tuple[str, str], ...]
    kept: Outcome

    def line(self) -> str:
        seen = ", ".join(f"{outcome} in {source}" for source, outcome in self.seen)
        return f"{self.nodeid} has {len(self.seen)} results ({seen}); counted as {self.kept}"


@dataclass(frozen=True)
class Books:
    """The balanced run: one final result per test, and what did not balance."""

    results: list[Result]
    not_run: list[tuple[str, str]] = field(default_factory=list)  # (node id, reason)
    conflicts: list[Conflict] = field(default_factory=list)
    unselected: list[tuple[str, str]] = field(default_factory=list)  # (source, why)
    expected: list[str] = field(default_factory=list)  # every id the sources set out to run
    # Sources that cut their shares from different collections: tests may have fallen between.
    disagreeing: list[str] = field(default_factory=list)
    # Files every shard left to another: (path, the first source that left it).
    never_collected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        problems = (self.not_run, self.conflicts, self.unselected, self.disagreeing)
        return not (any(problems) or self.never_collected)

    @property
    def tests(self) -> int:
        return sum(1 for r in self.results if r.get("when") != "collect")

    def line(self) -> str:
        """One sentence for the log and the report."""
        if self.balanced:
            return f"every collected test ran once ({plural(self.tests, 'test')})"
        return "the books do not balance: " + "; ".join(self.problems())

    def problems(self) -> list[str]:
        """What fails the run, each kind in one line that names its ids."""
        found = []
        if self.not_run:
            by_reason: dict[str, list[str]] = {}
            for nodeid, reason in self.not_run:
                by_reason.setdefault(reason, []).append(nodeid)
            for reason, ids in by_reason.items():
                listed = some(ids, SHOWN_IDS)
                found.append(f"{plural(len(ids), 'test')} never ran ({reason}): {listed}")
        if self.conflicts:
            ids = [c.nodeid for c in self.conflicts]
            listed = some(ids, SHOWN_IDS)
            found.append(f"{plural(len(ids), 'test')} reported more than once: {listed}")
        if self.disagreeing:
            found.append(
                f"{', '.join(self.disagreeing)} collected other tests than each other, so a test "
                "may have been in no share (is collection random or machine-specific?)"
            )
        if self.never_collected:
            paths = [path for path, _ in self.never_collected]
            found.append(
                f"{plural(len(paths), 'file')} collected by no shard (each shard pytest asked "
                f"about it left it to another; its tests ran nowhere): {some(paths, SHOWN_IDS)}"
            )
        for name, why in self.unselected:
            found.append(f"{name} never chose its tests ({why}): which tests it lost is unknown")
        return found

    def as_json(self) -> dict[str, object]:
        """What run.json and the history keep of the books."""
        return {
            "balanced": self.balanced,
            "tests": self.tests,
            "not_run": [list(pair) for pair in self.not_run],
            "conflicts": [c.line() for c in self.conflicts],
            "unselected": [list(pair) for pair in self.unselected],
            "never_collected": [list(pair) for pair in self.never_collected],
        }


def balance(sources: Iterable[Source]) -> Books:
    """The books of ``sources``: their results, one per test, with a ``not-run`` result for
    every expected test that reported nothing and the worst of a conflict's results."""
    sources = list(sources)
    collect_errors: dict[str, Result] = {}
    by_id: dict[str, list[tuple[str, Result]]] = {}
    for source in sources:
        for result in source.results:
            nodeid = str(result["nodeid"])
            if result.get("when") == "collect":
                collect_errors.setdefault(nodeid, result)
            else:
                by_id.setdefault(nodeid, []).append((source.name, result))
    final: dict[str, Result] = {}
    conflicts = []
    for nodeid, seen in by_id.items():
        kept, conflict = _one_result(nodeid, seen)
        final[nodeid] = kept
        if conflict is not None:
            conflicts.append(conflict)
    not_run = []
    for source in sources:
        reason = source.unfinished or f"{source.name} finished without reporting it"
        for nodeid in source.expected:
            if nodeid not in final:
                final[nodeid] = not_run_result(nodeid, source.name, reason)
                not_run.append((nodeid, reason))
    for source in sources:
        reason = f"{source.name} collected it and left it to another shard, which did not take it"
        for nodeid in source.left:
            if nodeid not in final:
                final[nodeid] = not_run_result(nodeid, source.name, reason)
                not_run.append((nodeid, reason))
    unselected = [(s.name, s.problem or "no reason given") for s in sources if not s.selected]
    results = [*collect_errors.values(), *final.values()]
    expected = [nodeid for source in sources for nodeid in source.expected]
    listed = set(expected)
    expected += [nodeid for nodeid, _ in not_run if nodeid not in listed]  # left, run nowhere
    cut = {source.name: source.collection for source in sources if source.collection}
    disagreeing = sorted(cut) if len(set(cut.values())) > 1 else []
    return Books(
        results, not_run, conflicts, unselected, expected, disagreeing, _never_collected(sources)
    )


def _never_collected(sources: Sequence[Source]) -> list[tuple[str, str]]:
    """The files every shard that was asked about them left to another, each with the first
    that left it. A file some shard was never asked about (a test wrote it after that shard
    had collected) proves nothing: it is not named."""
    asked = [source for source in sources if source.files_left or source.files_kept]
    lefts = [set(source.files_left) for source in asked]
    found: dict[str, str] = {}
    for source in asked:
        for path in source.files_left:
            if all(path in left for left in lefts):
                found.setdefault(path, source.name)
    return sorted(found.items())


def _one_result(nodeid: str, seen: list[tuple[str, Result]]) -> tuple[Result, Conflict | None]:
    if len(seen) == 1:
        return seen[0][1], None
    kept = worst(r.get("outcome") for _, r in seen)
    # The result that gave the worst outcome (an unknown word counts as an error).
    chosen = next(r for _, r in seen if (parse(r.get("outcome")) or Outcome.ERROR) == kept)
    pairs = tuple((source, str(r.get("outcome"))) for source, r in seen)
    conflict = Conflict(nodeid, pairs, kept)
    return {**chosen, "outcome": kept.value, "conflict": conflict.line()}, conflict


def not_run_result(nodeid: str, source: str, reason: str) -> Result:
    """The result line of a test that was to run in ``source`` and never reported."""
    return {
        "nodeid": nodeid,
        "outcome": Outcome.NOT_RUN.value,
        "duration": 0.0,
        "worker": source,
        "when": "call",
        "longrepr": f"Never ran: {reason}.",
    }
