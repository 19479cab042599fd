"""The ``--affected`` map: which tests ran each source line, made from coverage's contexts.

Pure mechanics (json, hashlib): ``cover.py`` calls ``build_map`` inside the session venv with
coverage's per-test contexts; the map is stored beside the durations file with the commit it
was made at (and the files that differed from it), and ``affected.py`` selects from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from noxlib.durations import file_of
from noxlib.errors import UsageError
from noxlib.files import write_atomic
from noxlib.idfile import write_ids
from noxlib.outcomes import COMPLETE, Outcome
from noxlib.testrecords import (
    RECORDS_FOLDER,
    Owners,
    Records,
    in_hidden_folder,
    relative_path,
)

DEFAULT_MAP_FILE = ".test_affected"
MAP_FORMAT = "noxlib-affected-map"
MAP_VERSION = 2
# A CI matrix shard's map, in its reports folder; combine merges them (and publishes the
# merged one there too, beside writing the project's map).
SHARD_MAP_FILE = "affected-map.json"
# Outcomes of a test that ran to its end: its recorded lines are all the lines it runs. A test
# that errored, timed out or crashed is left out of the map, so it always runs; so is a skipped
# one: its skip can hang on the machine (skipif on a platform or a variable, importorskip), and
# where it does not skip, the map holds none of the code it runs.
MAPPED = COMPLETE - {Outcome.SKIPPED}


@dataclass(frozen=True)
class FileLines:
    """What the map knows of one source file: for each line, the indexes of the tests that ran
    it; and the lines that ran outside any test (import time, subprocesses, threads started
    before the first test)."""

    by_line: Mapping[int, frozenset[int]]
    outside: frozenset[int] = frozenset()

    def touched_by(self) -> set[int]:
        """Every test that ran any line of the file."""
        return set().union(*self.by_line.values()) if self.by_line else set()


@dataclass(frozen=True)
class CoverageMap:
    """Source lines -> tests, made at ``commit``. ``dirty`` holds the files that differed from
    the commit when the map was made, with a hash of their text then: their line numbers are
    not the commit's, so a later change to them runs every test that touched them.

    ``opened`` holds the files inside the project each test opened (``opened_outside``: those
    opened at import or collection time), ``spawners`` the tests that started a process, and
    ``records`` whether every test's records came back (a process that crashed loses them): a
    changed data file can be narrowed to its readers only when they did."""

    commit: str
    tests: tuple[str, ...]
    files: Mapping[str, FileLines]
    dirty: Mapping[str, str] = field(default_factory=dict)
    opened: Mapping[str, frozenset[int]] = field(default_factory=dict)
    opened_outside: frozenset[str] = frozenset()
    spawners: frozenset[int] = frozenset()
    records: bool = False
    # Files every test of which that pytest collected (before any -m, -k or group selection)
    # ran to its end and is in the map: only such a file may be left uncollected by a
    # selection. A file with a test the map lacks is always collected.
    vouched: frozenset[str] = frozenset()

    def test_files(self) -> set[str]:
        return {file_of(t) for t in self.tests}


def text_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# --- making the map (called in the session venv, from coverage's data) ------------------------


def build_map(
    contexts: Mapping[str, Mapping[int, Iterable[str]]],
    tests: Sequence[str],
    root: Path,
    commit: str,
    dirty: Mapping[str, str] | None = None,
    *,
    records: Records | None = None,
    vouched: Iterable[str] = (),
) -> CoverageMap:
    """The map from ``contexts``: for each measured file (absolute path), each line's coverage
    contexts (``CoverageData.contexts_by_lineno``). ``tests`` are the node ids of the tests
    that ran to their end; a context that names none of them (the empty one of import time,
    a subprocess, a test that crashed) makes its lines "outside". A wider fixture's context
    names every test that uses it. Files outside ``root`` are left out: a change there runs
    every test."""
    owners = Owners(tests, records or Records())
    files: dict[str, FileLines] = {}
    for filename, by_line in contexts.items():
        path = relative_path(filename, root)
        if path is None:
            continue
        lines: dict[int, frozenset[int]] = {}
        outside: set[int] = set()
        for line, names in by_line.items():
            ids: set[int] = set()
            for name in names:
                found = owners.of(name)
                if found is None:
                    outside.add(line)
                else:
                    ids |= found
            if ids:
                lines[line] = frozenset(ids)
        files[path] = FileLines(lines, frozenset(outside))
    opened, opened_outside, spawners = owners.reads(root)
    return CoverageMap(
        commit,
        tuple(tests),
        files,
        dict(dirty or {}),
        opened,
        opened_outside,
        spawners,
        owners.complete,
        frozenset(vouched),
    )


def map_json(cmap: CoverageMap) -> dict[str, object]:
    """The map as compact JSON: each test once, each distinct set of tests once, and each file's
    lines as a flat ``[line, set, line, set, ...]`` list."""
    sets: dict[frozenset[int], int] = {}
    files: dict[str, dict[str, list[int]]] = {}
    for path, lines in sorted(cmap.files.items()):
        flat: list[int] = []
        for line, ids in sorted(lines.by_line.items()):
            flat += [line, sets.setdefault(ids, len(sets))]
        files[path] = {"lines": flat, "outside": sorted(lines.outside)}
    opened = {path: sets.setdefault(ids, len(sets)) for path, ids in sorted(cmap.opened.items())}
    return {
        "format": MAP_FORMAT,
        "version": MAP_VERSION,
        "commit": cmap.commit,
        "dirty": dict(sorted(cmap.dirty.items())),
        "tests": list(cmap.tests),
        "sets": [sorted(ids) for ids in sets],
        "files": files,
        "opened": opened,
        "opened_outside": sorted(cmap.opened_outside),
        "spawners": sorted(cmap.spawners),
        "records": cmap.records,
        "vouched": sorted(cmap.vouched),
    }


def merge_maps(maps: Sequence[CoverageMap]) -> CoverageMap:
    """One map from the maps of a CI matrix's shards, made at one commit (``combine`` has
    checked it): their tests together, each line's tests together, the records together. A
    shard vouches only for the files it collected whole, so their union is the merged one."""
    first = maps[0]
    tests = tuple(sorted({t for m in maps for t in m.tests}))
    index = {nodeid: i for i, nodeid in enumerate(tests)}
    by_line: dict[str, dict[int, set[int]]] = {}
    outside: dict[str, set[int]] = {}
    opened: dict[str, set[int]] = {}
    spawners: set[int] = set()
    for cmap in maps:

        def moved(ids: Iterable[int], cmap: CoverageMap = cmap) -> set[int]:
            return {index[cmap.tests[i]] for i in ids}

        for path, lines in cmap.files.items():
            target = by_line.setdefault(path, {})
            for line, ids in lines.by_line.items():
                target.setdefault(line, set()).update(moved(ids))
            outside.setdefault(path, set()).update(lines.outside)
        for path, ids in cmap.opened.items():
            opened.setdefault(path, set()).update(moved(ids))
        spawners |= moved(cmap.spawners)
    files = {
        path: FileLines({n: frozenset(ids) for n, ids in lines.items()}, frozenset(outside[path]))
        for path, lines in by_line.items()
    }
    return CoverageMap(
        first.commit,
        tests,
        files,
        _merged_dirty(maps),
        {path: frozenset(ids) for path, ids in opened.items()},
        frozenset().union(*(m.opened_outside for m in maps)),
        frozenset(spawners),
        all(m.records for m in maps),
        frozenset().union(*(m.vouched for m in maps)),
    )


def _merged_dirty(maps: Sequence[CoverageMap]) -> dict[str, str]:
    """Every shard's files that were not the commit's. Two shards that saw different texts
    of one (an ignored file each machine generates) leave it a hash no text has: whatever
    text it has here, it is not what every shard measured, so a change runs every test."""
    dirty: dict[str, str] = {}
    for cmap in maps:
        for path, digest in cmap.dirty.items():
            dirty[path] = digest if dirty.get(path, digest) == digest else "differed-by-shard"
    return dirty


def write_map(path: Path, cmap: CoverageMap) -> None:
    """Replace the map file at ``path`` atomically: a run that reads it sees old or new."""
    write_atomic(path, json.dumps(map_json(cmap), separators=(",", ":")) + "\n")


def read_map(path: Path) -> CoverageMap | None:
    """The map at ``path``; None when there is none. Raises UsageError naming the file, what is
    wrong and the fix when it cannot be read: a garbled map must never narrow a run."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad_map(path, f"it cannot be read ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad_map(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MAP_FORMAT:
        raise _bad_map(path, f'it is not a noxlib map (no "format": "{MAP_FORMAT}")')
    version = data.get("version")
    if isinstance(version, int) and 0 < version < MAP_VERSION:
        raise OldMap(f"the map {path} was written by an older noxlib (format {version})")
    if version != MAP_VERSION:
        raise _bad_map(path, f"it has version {version!r}; this noxlib reads {MAP_VERSION}")
    try:
        return _parse_map(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _bad_map(path, f"its content is malformed ({type(exc).__name__}: {exc})") from None


def _parse_map(data: Mapping[str, object]) -> CoverageMap:
    tests = [str(t) for t in _list(data["tests"])]
    sets = [frozenset(_index(i, len(tests)) for i in _list(s)) for s in _list(data["sets"])]
    files: dict[str, FileLines] = {}
    raw_files = data["files"]
    if not isinstance(raw_files, dict):
        raise TypeError("files is not an object")
    for path, entry in raw_files.items():
        flat = _ints(entry["lines"])
        if len(flat) % 2:
            raise ValueError(f"{path}: lines has an odd length")
        by_line = {flat[i]: sets[_index(flat[i + 1], len(sets))] for i in range(0, len(flat), 2)}
        files[str(path)] = FileLines(by_line, frozenset(_ints(entry["outside"])))
    dirty = data.get("dirty", {})
    if not isinstance(dirty, dict):
        raise TypeError("dirty is not an object")
    raw_opened = data["opened"]
    if not isinstance(raw_opened, dict):
        raise TypeError("opened is not an object")
    opened = {str(path): sets[_index(i, len(sets))] for path, i in raw_opened.items()}
    return CoverageMap(
        str(data["commit"]),
        tuple(tests),
        files,
        {str(k): str(v) for k, v in dirty.items()},
        opened,
        frozenset(str(p) for p in _list(data["opened_outside"])),
        frozenset(_index(i, len(tests)) for i in _list(data["spawners"])),
        data["records"] is True,
        frozenset(str(p) for p in _list(data["vouched"])),
    )


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, found {type(value).__name__}")
    return value


def _ints(value: object) -> list[int]:
    found = _list(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in found):
        raise TypeError("expected a list of line numbers")
    return [int(str(v)) for v in found]


def _index(value: object, size: int) -> int:
    if not isinstance(value, int) or not 0 <= value < size:
        raise IndexError(f"{value!r} is not an index below {size}")
    return value


class OldMap(Exception):
    """A map in an older format: it cannot narrow a run, and the next ``ci`` replaces it."""


def _bad_map(path: Path, why: str) -> UsageError:
    return UsageError(
        f"The map file {path} (tool.noxlib.affected.map-file) cannot be used by --affected: {why}. "
        "Delete it and run nox -s ci to write a new one, or run without --affected."
    )


def file_hash(path: Path) -> str | None:
    try:
        return text_hash(path.read_bytes())
    except OSError:
        return None


def with_untracked(cmap: CoverageMap, root: Path, written: Iterable[str] = ()) -> CoverageMap:
    """``cmap`` with the text hashes of its files that git does not track (ignored ones: a
    ``_version.py`` written at install, a data set fetched by a script) among its dirty files:
    git never lists a change of them, so only their text can say they are what the map saw.
    A file a test ``written`` (absolute paths) is the run's output, not its input: left out.
    Raises gitdiff.GitError outside git."""
    from noxlib import gitdiff

    outputs = {path for name in written if (path := relative_path(name, root)) is not None}
    known = gitdiff.tracked(root) | set(cmap.dirty) | outputs
    extra = {
        path: digest
        for path in sorted({*cmap.files, *cmap.opened} - known)
        if (digest := file_hash(root / path)) is not None
    }
    return replace(cmap, dirty={**cmap.dirty, **extra}) if extra else cmap


def code_digest(commit: str, dirty: Mapping[str, str]) -> str:
    """What names the code a run tested: its commit, and a digest of its uncommitted Python
    files (``dirty``, path -> hash) when there are any."""
    if not dirty:
        return commit
    listed = "\0".join(f"{path}\0{digest}" for path, digest in sorted(dirty.items()))
    return f"{commit}+{hashlib.sha256(listed.encode()).hexdigest()[:12]}"


def map_base(root: Path) -> tuple[str, dict[str, str]]:
    """The commit a map made now is made at, and the hashes of the Python files that differ
    from it (their lines are not the commit's). Raises gitdiff.GitError outside git."""
    from noxlib import gitdiff

    commit = gitdiff.head_commit(root)
    dirty = {
        path: digest
        for path in gitdiff.dirty_paths(root)
        if path.endswith(".py")
        and not in_hidden_folder(path)
        and (digest := file_hash(root / path)) is not None
    }
    return commit, dirty


def vouched_files(collected: Iterable[str], complete: Collection[str]) -> list[str]:
    """The files every ``collected`` id of which is ``complete`` (ran to its end, in the map)."""
    doubtful = {file_of(nodeid) for nodeid in collected if nodeid not in complete}
    return sorted({file_of(nodeid) for nodeid in complete} - doubtful)


def write_map_spec(
    folder: Path,
    out: Path,
    root: Path,
    base: tuple[str, dict[str, str]],
    results: Iterable[tuple[str, str]],
    *,
    collected: Iterable[str] = (),
) -> Path:
    """The request for ``python -m noxlib.cover --affected-map``: where the map goes, the
    commit and dirty files of ``base``, and the tests of ``results`` ((node id, outcome)
    pairs) that ran to their end without a skip."""
    complete = {nodeid for nodeid, outcome in results if outcome in MAPPED}
    tests = write_ids(folder / "map-tests.jsonl", sorted(complete))
    commit, dirty = base
    spec: dict[str, object] = {"out": str(out), "root": str(root), "commit": commit}
    spec["dirty"] = dirty
    spec["tests_file"] = str(tests)
    spec["vouched"] = vouched_files(collected, complete)
    spec["records"] = str(folder / RECORDS_FOLDER)
    path = folder / "affected-map.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path
