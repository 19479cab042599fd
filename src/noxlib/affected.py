"""``--affected``: which tests can see a change, from the map (``coveragemap.py``).

Pure mechanics (fnmatch): neither nox nor pytest nor coverage is imported here. The nox side
asks ``gitdiff`` what changed and ``select`` which known tests cannot see the change (a Python
file's hunks: ``hunks.py``); the pytest plugin leaves those out (``runorder.py``).

Every rule leans one way: when in doubt a test runs. A skipped test that would have failed
hides a bug until CI; an extra test costs seconds.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from noxlib import testimports
from noxlib.coveragemap import (
    CoverageMap,
    OldMap,
    file_hash,
    read_map,
)
from noxlib.durations import file_of
from noxlib.gitdiff import FileChange, short
from noxlib.hunks import Reach, tests_of_hunks
from noxlib.words import plural

# Files whose change no line of the map can show: each one runs every test.
CONFIG_FILES = frozenset(
    {
        "pyproject.toml",
        "setup.cfg",
        "setup.py",
        "tox.ini",
        "pytest.ini",
        "noxfile.py",
        ".coveragerc",
        "MANIFEST.in",
    }
)


# --- choosing the tests --------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What ``--affected`` runs: every test (``everything`` says why), or all but ``skip``, the
    known tests that cannot see the change. ``changed`` are the changed files considered."""

    skip: frozenset[str]
    everything: str | None
    changed: tuple[str, ...] = ()
    new_test_files: tuple[str, ...] = ()
    commit: str | None = None
    tests: tuple[str, ...] = ()  # every test the map knows
    why: Mapping[str, str] = field(default_factory=dict)  # a selected test -> what brought it
    # Test files with no selected test that the map vouches for: not even collected.
    uncollected: frozenset[str] = frozenset()

    def line(self, known: Collection[str]) -> str:
        """The banner's line, counting the ``known`` tests of this run (the map's tests under
        the run's paths)."""
        where = f"map from {short(self.commit)}" if self.commit else "no map"
        if self.everything is not None:
            return f"--affected: every test, because {self.everything} ({where})"
        selected = sum(1 for t in known if t not in self.skip)
        what = [plural(len(self.changed), "changed file")]
        if self.new_test_files:
            what.append(plural(len(self.new_test_files), "new test file") + " run whole")
        # "of the map's": the map's count, not the suite's (tests added or removed since the map
        # was recorded are in one and not the other); a test the map does not hold runs.
        return (
            f"--affected: {selected:,} of the map's {len(known):,} tests "
            f"({'; '.join(what)}; {where})"
        )

    def explain(self, known: Collection[str], shown: int = 20) -> list[str]:
        """``--explain``: what brought each selected test of ``known``, grouped by the change,
        and why leaving the rest out is safe; at most ``shown`` ids a group."""
        if self.everything is not None:
            return [f"--explain: no test is left out, because {self.everything}"]
        groups: dict[str, list[str]] = {}
        for nodeid in sorted(known):
            if nodeid not in self.skip:  # every test select() keeps has its reason
                groups.setdefault(self.why[nodeid], []).append(nodeid)
        lines: list[str] = []
        for reason, ids in sorted(groups.items()):
            lines.append(f"--explain: {plural(len(ids), 'test')} {reason}:")
            lines += [f"    {nodeid}" for nodeid in ids[:shown]]
            if len(ids) > shown:
                lines.append(f"    ... and {len(ids) - shown:,} more")
        lines += [f"--explain: new test file {path} runs whole" for path in self.new_test_files]
        left_out = sum(1 for t in known if t in self.skip)
        lines.append(
            f"--explain: {plural(left_out, 'test')} left out: none ran a line of a changed "
            "function, used a fixture whose code changed or opened a changed file, and no "
            "change was at module level, in a cached function or in lines that ran outside "
            "any test (docs/testing.md#what-runs). Tests the map does not know run anyway."
        )
        return lines


def run_everything(why: str, commit: str | None = None) -> Selection:
    """A selection of every test, with the reason (the map cannot answer for the change)."""
    return Selection(frozenset(), why, commit=commit)


@dataclass(frozen=True)
class Rules:
    """What decides a changed file's fate besides the map: ``ignored`` globs (noxlib's own
    files and the project's ``ignore`` setting) and ``test_file`` (pytest's python_files)."""

    ignored: tuple[str, ...] = ()
    test_patterns: tuple[str, ...] = ("test_*.py", "*_test.py")

    def ignores(self, path: str) -> bool:
        pure = PurePosixPath(path)
        return any(_glob(pure, pattern) for pattern in self.ignored)

    def is_test_file(self, path: str) -> bool:
        name = PurePosixPath(path).name
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.test_patterns)


def _glob(path: PurePosixPath, pattern: str) -> bool:
    # "docs/**" or "docs/" means the folder and everything in it; else fnmatch on the whole
    # path, or on the name alone when the pattern has no slash ("*.md").
    folder = pattern.rstrip("*").rstrip("/") if pattern.endswith(("/", "/**")) else None
    if folder is not None:
        return str(path) == folder or str(path).startswith(folder + "/")
    if "/" not in pattern:
        return fnmatch.fnmatch(path.name, pattern)
    return fnmatch.fnmatch(str(path), pattern)


def _unknown(path: str) -> str | None:
    return None


@dataclass(frozen=True)
class Tree:
    """The two sides of the change, asked by path: ``old_text`` at the map's commit,
    ``current_hash`` and ``new_text`` in the working tree (None when gone or not known)."""

    old_text: Callable[[str], str | None]
    current_hash: Callable[[str], str | None]
    new_text: Callable[[str], str | None] = _unknown
    # The Python files beside the test files and in their parent folders, path -> text,
    # measured source aside: where a test file's importers live (asked only when one changed).
    test_tree: Callable[[], Mapping[str, str]] = dict


def select(cmap: CoverageMap, changes: Sequence[FileChange], tree: Tree, rules: Rules) -> Selection:
    """The tests that can see ``changes`` (made since ``cmap.commit``) in ``tree``. Returns
    every test, with the reason, when a change is one the map cannot answer for."""
    considered = [c for c in changes if not rules.ignores(c.path)]
    listed = {c.path for c in considered}
    for path, then in sorted(cmap.dirty.items()):
        # Compared whatever git lists: reverted to the commit, it is still not what was mapped.
        if path not in listed and not rules.ignores(path) and tree.current_hash(path) != then:
            return run_everything(_dirty_reason(path), cmap.commit)
    why: dict[str, str] = {}
    new_test_files: list[str] = []
    test_files = cmap.test_files()
    for change in considered:
        found = _reach(change, cmap, rules, test_files, tree)
        if isinstance(found, str):
            return run_everything(found, cmap.commit)
        opened = cmap.opened.get(change.path, frozenset())
        found = {i: f"opened {change.path}, which changed" for i in opened} | found
        for i, reason in found.items():
            why.setdefault(cmap.tests[i], reason)
        if change.path in test_files or rules.is_test_file(change.path):
            # A measured file's importers are in its lines' tests already.
            importing = (
                {} if change.path in cmap.files else _importing_tests(change.path, cmap, tree)
            )
            if isinstance(importing, str):
                return run_everything(importing, cmap.commit)
            for nodeid in cmap.tests:
                if file_of(nodeid) == change.path:
                    why.setdefault(nodeid, f"are in {change.path}, which changed")
                elif file_of(nodeid) in importing:
                    why.setdefault(nodeid, importing[file_of(nodeid)])
            if change.path not in test_files:
                new_test_files.append(change.path)
    skip = {t for t in cmap.tests if t not in why}
    return Selection(
        frozenset(skip),
        None,
        tuple(c.path for c in considered),
        tuple(new_test_files),
        cmap.commit,
        cmap.tests,
        why,
        _uncollected(cmap, considered, why, rules),
    )


def _importing_tests(path: str, cmap: CoverageMap, tree: Tree) -> dict[str, str] | str:
    """The files whose tests a changed test file reaches through an import (a class they
    inherit, a helper they take), each with the reason; or why every test may see it."""
    reached = testimports.importers(path, tree.test_tree())
    for importer in sorted(reached):
        if PurePosixPath(importer).name == "conftest.py":
            return (
                f"{path} changed, and {importer} imports it: a conftest.py reaches every "
                "test below its folder"
            )
    return {
        importer: f"are in {importer}, which imports {path}, which changed" for importer in reached
    }


def _uncollected(
    cmap: CoverageMap, changes: Sequence[FileChange], why: Mapping[str, str], rules: Rules
) -> frozenset[str]:
    """The files a run need not collect: each one the map vouches for (every test pytest
    collected from it is in the map) whose tests are all left out. None while a new module
    is among the changes: a test file may list modules at collection time and gain tests."""
    if any(c.status in ("added", "untracked") and c.path.endswith(".py") for c in changes):
        return frozenset()
    selected_files = {file_of(nodeid) for nodeid in why}
    return frozenset(
        path
        for path in cmap.vouched
        if path not in selected_files
        and PurePosixPath(path).name not in ("conftest.py", "__init__.py")
    )


def _reach(
    change: FileChange, cmap: CoverageMap, rules: Rules, test_files: Collection[str], tree: Tree
) -> Reach:
    """The tests ``change`` can reach, or why every test may see it."""
    why = _beyond_the_map(change, cmap, rules, test_files)
    if why:
        return why
    if change.path not in cmap.files and (
        change.path in test_files or rules.is_test_file(change.path)
    ):
        return {}  # its file runs whole
    # A measured file with tests of its own (doctests, --doctest-modules) is source too: the
    # tests that ran its lines see the change as well as its own tests.
    if not change.path.endswith(".py"):
        return _readers(change.path, cmap)
    if change.status in ("added", "untracked"):
        return _package_tests(change.path, cmap)
    return _source_reach(change, cmap, tree)


def _source_reach(change: FileChange, cmap: CoverageMap, tree: Tree) -> Reach:
    """The tests a modified source file's change reaches, the map's dirty files aside."""
    path = change.path
    if path in cmap.dirty:
        if tree.current_hash(path) == cmap.dirty[path]:
            return {}  # what the map was made from, not committed then or now
        return _dirty_reason(path)
    spawners = cmap.spawners if cmap.records else None
    return tests_of_hunks(
        change, cmap.files[path], tree.old_text(path), tree.new_text(path), spawners
    )


def _dirty_reason(path: str) -> str:
    return (
        f"{path} differs from the text the map was made with (it was not committed then), so "
        "the map's lines for it do not hold"
    )


def _beyond_the_map(
    change: FileChange, cmap: CoverageMap, rules: Rules, test_files: Collection[str]
) -> str | None:
    """Why ``change`` runs every test, or None when the map can answer for it."""
    name = PurePosixPath(change.path).name
    if change.path.startswith("../"):
        return (
            f"{change.path} changed: it is outside the project folder, where the map does not "
            "look (add it to tool.noxlib.affected.ignore if no test imports or reads it)"
        )
    if name == "conftest.py":
        return f"conftest.py changed ({change.path})"
    if name in CONFIG_FILES:
        return f"configuration changed ({change.path})"
    if change.status == "deleted":
        return f"a file was deleted ({change.path})"
    known = change.path in cmap.files or change.path in test_files
    python = change.path.endswith(".py")
    if python and change.status == "modified" and not known and not rules.is_test_file(change.path):
        return (
            f"{change.path} changed and the map has no line of it (coverage did not measure "
            "it; add it to tool.noxlib.affected.ignore if no test imports it)"
        )
    return None


def _readers(path: str, cmap: CoverageMap) -> Reach:
    """The tests that opened the data file ``path`` while the map was recorded, with every test
    that started a process (what a child reads, no hook sees); or why every test may read it."""
    unseen = (
        f"a file that is not Python changed ({path}): tests may read it "
        "(add it to tool.noxlib.affected.ignore if none does)"
    )
    if not cmap.records:
        return unseen + "; the map holds no record of the files tests opened"
    if path in cmap.opened_outside:
        return f"{path} changed, and it was opened outside any test (at import or collection)"
    readers = cmap.opened.get(path)
    if not readers:
        return unseen + "; no test opened it while the map was recorded"
    started = f"started a process, and {path} changed (what a child reads, no hook sees)"
    return {i: started for i in cmap.spawners} | {
        i: f"opened {path}, which changed" for i in readers
    }


def _package_tests(path: str, cmap: CoverageMap) -> Reach:
    """The tests of the measured package a new module lands in: a package may find its modules
    by listing its folder (pkgutil, importlib), so every test that ran its code may see it."""
    folder = PurePosixPath(path).parent
    for package in (folder, *folder.parents):
        if any(PurePosixPath(p).parent == package for p in cmap.files):
            break
    else:
        return {}  # in no measured package: whoever imports it changed too
    inside = [
        lines
        for p, lines in cmap.files.items()
        if package == PurePosixPath(".") or PurePosixPath(p).is_relative_to(package)
    ]
    touched: set[int] = set().union(*(lines.touched_by() for lines in inside))
    if touched:
        return dict.fromkeys(touched, f"ran code of {package}, where {path} is a new module")
    if any(lines.outside for lines in inside):
        return (
            f"{path} is a new module of {package}, whose code ran only outside tests "
            "(at import time, or in a subprocess)"
        )
    return {}


# --- what a session does with all this (the nox side calls these; nox stays out) ----------

# Never a reason to run tests: caches and what noxlib and coverage write themselves.
ALWAYS_IGNORED = (
    ".noxlib/",
    ".nox/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "*.pyc",
    ".coverage",
    ".coverage.*",
    "*.egg-info/*",
)


def rules_for(
    own_files: Sequence[str], ignore: Sequence[str], test_patterns: Sequence[str]
) -> Rules:
    """The rules of a project: noxlib's ``own_files`` (durations, map, reports folder) and the
    ``ignore`` setting are no change to the tests; ``test_patterns`` are pytest's python_files."""
    return Rules((*ALWAYS_IGNORED, *own_files, *ignore), tuple(test_patterns))


def select_since_map(root: Path, map_path: Path, rules: Rules, no_map_fix: str) -> Selection:
    """What ``--affected`` runs in the project at ``root``: the map at ``map_path`` against
    ``git diff`` since its commit, plus untracked files. Raises UsageError for a map that
    cannot be read; every other doubt runs every test, and says why."""
    from noxlib import gitdiff

    try:
        cmap = read_map(map_path)
    except OldMap as exc:
        return run_everything(f"{exc}; the next nox -s ci that records it writes a new one")
    if cmap is None:
        return run_everything(f"there is no map at {map_path} yet ({no_map_fix})")
    try:
        gitdiff.head_commit(root)
    except gitdiff.GitError as exc:
        return run_everything(f"git cannot tell what changed here ({exc})", cmap.commit)
    if not gitdiff.has_commit(root, cmap.commit):
        return run_everything(
            f"git cannot diff against the map's commit {short(cmap.commit)}: this clone does "
            "not have it (fetch it, or run nox -s ci for a new map)",
            cmap.commit,
        )
    try:
        changes = gitdiff.changes_since(root, cmap.commit)
    except gitdiff.GitError as exc:
        return run_everything(f"git diff against the map's commit failed ({exc})", cmap.commit)
    tree = Tree(
        lambda path: gitdiff.old_text(root, cmap.commit, path),
        lambda path: file_hash(root / path),
        lambda path: _read_text(root / path),
        lambda: _test_tree(root, cmap),
    )
    return select(cmap, changes, tree, rules)


def _test_tree(root: Path, cmap: CoverageMap) -> dict[str, str]:
    """The Python files a changed test file's importers can be in, by path relative to
    ``root``, the measured source aside: every file below the top folder of each of the
    map's test files (a helper folder with no test of its own can pass an import on), and
    the files in ``root`` itself. Hidden folders and virtualenvs are not project code."""
    texts: dict[str, str] = {}
    tops = {PurePosixPath(path).parts[0] for path in cmap.test_files() if "/" in path}
    files = [*root.glob("*.py"), *(f for top in sorted(tops) for f in _python_files(root / top))]
    for file in files:
        relative = file.relative_to(root).as_posix()
        text = None if relative in cmap.files else _read_text(file)
        if text is not None:
            texts[relative] = text
    return texts


def _python_files(folder: Path) -> Iterator[Path]:
    for parent, folders, names in os.walk(folder):
        here = Path(parent)
        folders[:] = sorted(
            name
            for name in folders
            if not name.startswith((".", "__pycache__"))
            and not (here / name / "pyvenv.cfg").exists()
        )
        yield from (here / name for name in sorted(names) if name.endswith(".py"))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
