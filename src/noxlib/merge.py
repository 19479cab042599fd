"""Parts of a run, or the shards of a CI matrix, merged into one run: the one merge path.

A run's parts and a matrix's shards both become `books.Source` values; `books.balance` makes
one result per test of them, and `write_merged` writes what every later step reads: the
results file, the ids the run expected (``tests.jsonl``), and one JUnit XML. The durations
file is updated from the same results. Coverage data is merged by coverage itself
(noxlib/cover.py, in the session venv).

Pure mechanics on files.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from noxlib.books import Books, Source
from noxlib.durationfiles import DurationFiles
from noxlib.durations import merge_durations, read_durations, write_durations
from noxlib.errors import UsageError
from noxlib.files import write_atomic
from noxlib.idfile import read_ids, write_ids
from noxlib.jsonlines import values
from noxlib.outcomes import TIMED
from noxlib.parts import PartFiles
from noxlib.runinfo import RunInfo

Result = dict[str, object]
RESULTS_FILE = "results.jsonl"
JUNIT_FILE = "junit.xml"
# Every id the run set out to run (an id file): what combine expects a result for.
TESTS_FILE = "tests.jsonl"


def read_results(path: Path) -> list[Result]:
    """The result lines of ``path``; a line torn by a dead writer is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [
        record
        for record in values(data)
        if isinstance(record, dict) and isinstance(record.get("nodeid"), str)
    ]


def collected(parts: Sequence[PartFiles]) -> tuple[list[str], list[str]]:
    """What the run collected before any selection (node ids, files): every part's, together.
    (Parts collect the same, or, split by file, each its own files.)"""
    ids: dict[str, None] = {}
    files: dict[str, None] = {}
    read: set[object] = set()  # digests of collections read: parts that agree are read once
    for part in parts:
        for event in part.events():
            if event.get("event") == "collected":
                if event.get("digest") in read:
                    break
                read.add(event.get("digest"))
                ids.update(dict.fromkeys(read_ids(part.collected)))
                files.update(dict.fromkeys(str(f) for f in event.get("files", [])))  # type: ignore[attr-defined]
                break
    return list(ids), list(files)


def measured_durations(results: Iterable[Result]) -> dict[str, float]:
    """Each test's setup + call + teardown seconds, from results that timed it."""
    return {
        str(r["nodeid"]): float(str(r.get("duration", 0.0)))
        for r in results
        if r.get("outcome") in TIMED and r.get("when") != "collect"
    }


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """The exclusive lock file ``lock``: two runs in one checkout update a file one at a time."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def update_durations(
    path: Path,
    results: Iterable[Result],
    *,
    collected_ids: Iterable[str] = (),
    whole_files: Iterable[str] = (),
    root: Path,
    lock: Path | None = None,
    recorded: Callable[[], dict[str, float]] | None = None,
) -> int:
    """Merge ``results``' durations into the durations file at ``path``; return its size.
    ``recorded`` reads the figures to merge into (default: the file at ``path``).

    Ids the run no longer collects from files it collected whole (``whole_files``), and ids of
    files gone from ``root``, are dropped. ``lock`` is the lock file that serialises updates
    (default: beside ``path``; noxlib keeps it in ``.noxlib/``, out of the user's tree).
    """
    with _locked(lock or path.with_name(f".{path.name.lstrip('.')}.lock")):
        try:
            old = recorded() if recorded is not None else read_durations(path)
        except UsageError:
            old = {}  # a garbled file is replaced: the run just measured what it needs
        merged = merge_durations(
            old,
            measured_durations(results),
            collected=collected_ids,
            full_files=whole_files,
            # Once per file, not once per test.
            existing_file=functools.cache(lambda rel: (root / rel).exists()),
        )
        write_durations(path, merged)
    return len(merged)


def write_results(path: Path, results: Iterable[Result]) -> None:
    # One encoder for all lines: json.dumps with an option builds a new one for every call.
    encode = json.JSONEncoder(sort_keys=True).encode
    write_atomic(path, "".join(encode(r) + "\n" for r in results))


def part_source(name: str, files: PartFiles, *, unfinished: str = "", problem: str = "") -> Source:
    """The books' view of one part of a run: what its processes set out to run (their shares)
    and what they reported. ``unfinished`` and ``problem`` are the engine's words for why
    tests may lack a result, and why the part never chose its tests."""
    return Source(
        name=name,
        expected=files.expected(),
        results=read_results(files.results),
        unfinished=unfinished,
        selected=files.selected(),
        problem=problem or "its pytest ended before it chose its tests",
        collection=files.collected_digest() if _cut_from_collection(files) else "",
        left=read_ids(files.left),
        files_left=read_ids(files.files_left),
        files_kept=read_ids(files.files_kept),
    )


def _cut_from_collection(files: PartFiles) -> bool:
    """Whether the part kept a shard of everything it collected (not its own files, not a
    list): every such part must have collected the same."""
    return files.selected_event().get("how") == "shard"


def shard_source(folder: Path, info: RunInfo) -> Source:
    """The books' view of one CI shard: its reports folder's expected ids and results (its own
    books already gave each missing test a not-run result, with the reason)."""
    pairs = _pairs(info.books.get("unselected"))
    return Source(
        name=f"shard {info.shard}",
        expected=read_ids(folder / TESTS_FILE),
        results=read_results(folder / RESULTS_FILE),
        selected=not pairs,
        problem="; ".join(f"{name}: {why}" for name, why in pairs),
        # Files its own shards left to each other and none took: still collected by nobody.
        files_left=[path for path, _ in _pairs(info.books.get("never_collected"))],
    )


def _pairs(found: object) -> list[tuple[str, str]]:
    return [(str(p[0]), str(p[1])) for p in found] if isinstance(found, list) else []


def write_merged(
    books: Books, expected: Iterable[str], out: Path, junit_files: Sequence[Path] | None
) -> None:
    """Write the merged run into folder ``out``: results, the expected ids and, when
    ``junit_files`` is given, one JUnit XML made from them and the books."""
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / RESULTS_FILE, books.results)
    write_ids(out / TESTS_FILE, expected)
    if junit_files is not None:
        from noxlib.junit import merge_junit  # ci's alone: other runs skip xml.etree

        merge_junit(junit_files, books.results, out / JUNIT_FILE)
    else:
        # A ci run's JUnit XML beside a later tests run's results would be read as this run's.
        (out / JUNIT_FILE).unlink(missing_ok=True)


def update_run_durations(
    files: DurationFiles,
    path: Path,
    books: Books,
    parts: Sequence[PartFiles],
    *,
    whole_files: bool,
    root: Path,
    lock: Path,
) -> int:
    """Merge a run's measured durations into ``files``' figures and write them to ``path``
    (one of them), forgetting the tests its parts no longer collect (of the files they
    collected whole, when ``whole_files``) and the files gone from the project at ``root``."""
    ids, whole = collected(parts)
    return update_durations(
        path,
        books.results,
        collected_ids=ids,
        whole_files=whole if whole_files else [],
        root=root,
        lock=lock,
        recorded=files.read,
    )
