"""What a test's coverage context cannot show, recorded beside it while the map is made.

Each pytest process writes one ``Records`` file (the plugin's ``TestContexts``): each test's
fixture names, the files opened under each context, the contexts that started a process.
``Owners`` turns a context into the tests it stands for: a test's node id names it, a wider
fixture's context every test that uses the fixture. Pure (json); ``coveragemap.build_map``
reads them.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from noxlib.durations import file_of
from noxlib.files import write_atomic

# The coverage context a fixture wider than a test is set up under: its lines belong to every
# test that uses it, not to the first one.
FIXTURE_CONTEXT = "noxlib-fixture:"
# The coverage context pytest collects a test file under (its import, its parametrize lists):
# what runs then shapes that file's tests, so its lines belong to them. The body of a measured
# module imported meanwhile stays outside: every importer sees what it built.
COLLECT_CONTEXT = "noxlib-collect:"
# The folder of a run where each pytest process writes its Records.
RECORDS_FOLDER = "reach"


@dataclass
class Records:
    """What one pytest process saw that coverage's lines do not show: each test's fixture
    names (``uses``), the files opened under each context, the contexts that started a
    process. Written by the plugin at the end of its session, read back by ``build_map``."""

    uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    opened: dict[str, set[str]] = field(default_factory=dict)
    spawned: set[str] = field(default_factory=set)
    # Files opened to write: a test's output, whose text the next run may change.
    written: set[str] = field(default_factory=set)

    def open(self, context: str, path: str, writes: bool = False) -> None:
        self.opened.setdefault(context, set()).add(path)
        if writes:
            self.written.add(path)

    def write(self, folder: Path) -> None:
        data = {
            "uses": self.uses,
            "opened": {context: sorted(paths) for context, paths in self.opened.items()},
            "spawned": sorted(self.spawned),
            "written": sorted(self.written),
        }
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json", json.dumps(data))

    def add(self, other: Records) -> None:
        self.uses.update(other.uses)
        for context, paths in other.opened.items():
            self.opened.setdefault(context, set()).update(paths)
        self.spawned |= other.spawned
        self.written |= other.written


def read_records(folder: Path) -> Records:
    """Every process's records in ``folder``, merged. A file that cannot be read counts as
    missing: its tests then have no ``uses``, and the map does not narrow by records."""
    merged = Records()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            merged.add(
                Records(
                    {str(k): tuple(v) for k, v in data["uses"].items()},
                    {str(k): set(v) for k, v in data["opened"].items()},
                    set(data["spawned"]),
                    set(data["written"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return merged


class Owners:
    """Which tests a coverage context (or a record's context) stands for: a test's node id
    names it, a wider fixture's context every test that uses the fixture, a test file's
    collection every test of that file; None means outside any test (or, with records
    missing, a fixture whose users are not known)."""

    def __init__(self, tests: Sequence[str], records: Records) -> None:
        self.index = {nodeid: i for i, nodeid in enumerate(tests)}
        self.records = records
        self.complete = bool(tests) and all(t in records.uses for t in tests)
        self.users: dict[str, set[int]] = {}
        self.by_file: dict[str, set[int]] = {}
        for nodeid, i in self.index.items():
            self.by_file.setdefault(file_of(nodeid), set()).add(i)
        for nodeid, names in records.uses.items():
            if nodeid in self.index:
                for name in names:
                    self.users.setdefault(name, set()).add(self.index[nodeid])

    def of(self, context: str) -> set[int] | None:
        # A static context set in [tool.coverage.run] comes first: "static|tests/t.py::test_x".
        for name in (context, context.partition("|")[2]):
            if name in self.index:
                return {self.index[name]}
            if name.startswith(FIXTURE_CONTEXT) and self.complete:
                users = self.users.get(name[len(FIXTURE_CONTEXT) :])
                if users:
                    return users
            if name.startswith(COLLECT_CONTEXT):
                tests = self.by_file.get(name[len(COLLECT_CONTEXT) :])
                if tests:
                    return tests
        return None

    def reads(self, root: Path) -> tuple[dict[str, frozenset[int]], frozenset[str], frozenset[int]]:
        """The project files each test opened, those opened outside any test, and the tests
        that started a process. A process started outside any test makes every test a
        possible reader, as if it had started it."""
        opened: dict[str, set[int]] = {}
        outside: set[str] = set()
        for context, paths in self.records.opened.items():
            owners = self.of(context)
            for filename in paths:
                path = relative_path(filename, root)
                if path is None or in_hidden_folder(path) or "__pycache__/" in path:
                    continue
                if owners is None:
                    # Imports open every module: only data files read at import time matter.
                    if not path.endswith((".py", ".pyc")):
                        outside.add(path)
                else:
                    opened.setdefault(path, set()).update(owners)
        spawners: set[int] = set()
        for context in self.records.spawned:
            owners = self.of(context)
            spawners |= set(self.index.values()) if owners is None else owners
        frozen = {path: frozenset(ids) for path, ids in opened.items()}
        return frozen, frozenset(outside), frozenset(spawners)


def relative_path(filename: str, root: Path) -> str | None:
    try:
        return Path(filename).resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def in_hidden_folder(path: str) -> bool:
    # .nox, .venv, .tox, .noxlib: tools' folders (venvs full of Python files), not the code
    # under test, when the project's .gitignore does not list them. ".." is a way out of the
    # project folder, not a hidden folder.
    return any(part.startswith(".") and part != ".." for part in path.split("/")[:-1])
