"""``--affected``: which tests can see a change, from the map (``coveragemap.py``), and order.

Pure mechanics (ast, fnmatch): neither nox nor pytest nor coverage is imported here. The nox
side asks ``gitdiff`` what changed and ``select`` which known tests cannot see the change; the
pytest plugin leaves those out and puts last run's failures first (``run_first``).

Every rule leans one way: when in doubt a test runs. A skipped test that would have failed
hides a bug until CI; an extra test costs seconds.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from noxlib.coveragemap import (
    CoverageMap,
    FileLines,
    file_hash,
    read_map,
)
from noxlib.durations import file_of
from noxlib.gitdiff import FileChange, Hunk, short
from noxlib.idfile import write_ids
from noxlib.outcomes import FAILING
from noxlib.parts import FIRST_ENV, SKIP_ENV
from noxlib.words import plural

# Outcomes that put a test first in the next run of its session.
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
        return f"--affected: {selected:,} of {len(known):,} tests ({'; '.join(what)}; {where})"


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


def select(
    cmap: CoverageMap,
    changes: Sequence[FileChange],
    old_text: Callable[[str], str | None],
    current_hash: Callable[[str], str | None],
    rules: Rules,
) -> Selection:
    """The tests that can see ``changes`` (made since ``cmap.commit``).

    ``old_text(path)`` is a file's text at the map's commit and ``current_hash(path)`` the hash
    of its text now (None when gone). Returns every test, with the reason, when a change is one
    the map cannot see.
    """
    considered = [c for c in changes if not rules.ignores(c.path)]
    affected: set[int] = set()
    whole_files: set[str] = set()
    new_test_files: list[str] = []
    test_files = cmap.test_files()
    for change in considered:
        why = _beyond_the_map(change, cmap, rules, test_files)
        if why:
            return run_everything(why, cmap.commit)
        if change.path in test_files or rules.is_test_file(change.path):
            whole_files.add(change.path)
            if change.path not in test_files:
                new_test_files.append(change.path)
        lines = cmap.files.get(change.path)
        if lines is None:
            continue
        if change.path in cmap.dirty:
            if current_hash(change.path) != cmap.dirty[change.path]:
                affected |= _whole_file(change.path, lines)
            continue
        found = _tests_of_hunks(change, lines, old_text(change.path))
        if isinstance(found, str):
            return run_everything(found, cmap.commit)
        affected |= found
    keep = {cmap.tests[i] for i in affected}
    skip = {t for t in cmap.tests if t not in keep and file_of(t) not in whole_files}
    return Selection(
        frozenset(skip),
        None,
        tuple(c.path for c in considered),
        tuple(new_test_files),
        cmap.commit,
        cmap.tests,
    )


def _beyond_the_map(
    change: FileChange, cmap: CoverageMap, rules: Rules, test_files: Collection[str]
) -> str | None:
    """Why ``change`` runs every test, or None when the map can answer for it."""
    name = PurePosixPath(change.path).name
    if name == "conftest.py":
        return f"conftest.py changed ({change.path})"
    if name in CONFIG_FILES:
        return f"configuration changed ({change.path})"
    if change.status == "deleted":
        return f"a file was deleted ({change.path})"
    if not change.path.endswith(".py"):
        return (
            f"a file that is not Python changed ({change.path}): tests may read it "
            "(add it to tool.noxlib.affected.ignore if none does)"
        )
    known = change.path in cmap.files or change.path in test_files
    if change.status == "modified" and not known and not rules.is_test_file(change.path):
        return (
            f"{change.path} changed and the map has no line of it (coverage did not measure "
            "it; add it to tool.noxlib.affected.ignore if no test imports it)"
        )
    return None


def _whole_file(path: str, lines: FileLines) -> set[int]:
    return lines.touched_by()


def _tests_of_hunks(change: FileChange, lines: FileLines, old: str | None) -> set[int] | str:
    """The tests that ran the old lines a modified file's hunks replaced, or the reason to run
    every test. A new (added or untracked) file has no old lines: whoever runs it imports it
    from a file that changed too."""
    if change.status != "modified" or not change.hunks:
        return set()
    if old is None:
        return _whole_file(change.path, lines)
    try:
        statements = Statements(ast.parse(old))
    except (SyntaxError, ValueError):
        return _whole_file(change.path, lines)  # the old text did not parse: no spans to use
    found: set[int] = set()
    outside = False
    for hunk in change.hunks:
        for first, last in statements.spans_of(hunk):
            for line in range(first, last + 1):
                found |= lines.by_line.get(line, frozenset())
                outside = outside or line in lines.outside
    if outside:
        # A line that ran at import time (or outside any test) changed: every test that used
        # the module may see it, and a module no test ran may break every import of it.
        touched = lines.touched_by()
        if not touched:
            return (
                f"{change.path} changed in lines that ran outside any test (at import time or "
                "in a subprocess) and no test ran its code"
            )
        found |= touched
    return found


class Statements:
    """The statements of one old file by line span, to map a changed line to the lines
    coverage records for it: a statement is recorded at its first line, however many lines
    it spans."""

    def __init__(self, tree: ast.Module) -> None:
        self.spans: list[tuple[int, int, ast.stmt]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt):
                first = min([node.lineno, *(d.lineno for d in _decorators(node))])
                self.spans.append((first, node.end_lineno or node.lineno, node))

    def spans_of(self, hunk: Hunk) -> list[tuple[int, int]]:
        """Line spans whose recorded tests see ``hunk``: for replaced lines, the innermost
        statement of each; for an insertion, the statements on either side of it."""
        if hunk.count == 0:
            wanted = [hunk.start, hunk.start + 1]
        else:
            wanted = list(range(hunk.start, hunk.start + hunk.count))
        found: list[tuple[int, int]] = []
        for line in wanted:
            found += self.span_of(line)
        return found

    def span_of(self, line: int) -> list[tuple[int, int]]:
        inner = self.innermost(line)
        if inner is None:
            # A blank or comment line between statements: replacing it may add code, which
            # runs where its neighbours run.
            return [s for s in (self.before(line), self.after(line)) if s is not None]
        first, last, node = inner
        if _has_body(node) and _in_header(node, line):
            # A def, class, if, for, ... header: who runs its body sees the change.
            return [(first, last)]
        if _has_body(node):
            # A line inside a compound statement but in none of its body statements (an else:
            # line, a blank line in a body): the statements on either side of it.
            return [s for s in (self.before(line), self.after(line)) if s is not None]
        return [(first, last)]

    def innermost(self, line: int) -> tuple[int, int, ast.stmt] | None:
        holding = [s for s in self.spans if s[0] <= line <= s[1]]
        return min(holding, key=lambda s: s[1] - s[0]) if holding else None

    def before(self, line: int) -> tuple[int, int] | None:
        ending = [(s[0], s[1]) for s in self.spans if s[1] < line and not _has_body(s[2])]
        return max(ending, key=lambda s: (s[1], s[0])) if ending else None

    def after(self, line: int) -> tuple[int, int] | None:
        starting = [(s[0], s[0]) for s in self.spans if s[0] > line]
        return min(starting) if starting else None


def _decorators(node: ast.stmt) -> list[ast.expr]:
    return list(getattr(node, "decorator_list", []))


def _has_body(node: ast.stmt) -> bool:
    return bool(getattr(node, "body", None))


def _in_header(node: ast.stmt, line: int) -> bool:
    """Whether ``line`` is in the statement's own lines, before its first body statement."""
    body: list[ast.stmt] = getattr(node, "body", [])
    return line < body[0].lineno if body else True


# --- order: last run's failures first -------------------------------------------------------


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


def select_since_map(root: Path, map_path: Path, rules: Rules) -> Selection:
    """What ``--affected`` runs in the project at ``root``: the map at ``map_path`` against
    ``git diff`` since its commit, plus untracked files. Raises UsageError for a map that
    cannot be read; every other doubt runs every test, and says why."""
    from noxlib import gitdiff

    cmap = read_map(map_path)
    if cmap is None:
        return run_everything(
            f"there is no map at {map_path} yet (nox -s ci writes it; or fetch CI's)"
        )
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
    return select(
        cmap,
        changes,
        lambda path: gitdiff.old_text(root, cmap.commit, path),
        lambda path: file_hash(root / path),
        rules,
    )


@dataclass(frozen=True)
class TestOrder:
    """What the pytest processes of one run leave out and run first, handed over in files."""

    __test__ = False  # not a pytest test class

    skip: frozenset[str] = frozenset()
    first: tuple[str, ...] = ()

    def env(self, folder: Path) -> dict[str, str]:
        """Write the lists into ``folder`` and return the variables that name them."""
        env: dict[str, str] = {}
        if self.skip:
            env[SKIP_ENV] = str(write_ids(folder / "affected-skip.jsonl", sorted(self.skip)))
        if self.first:
            env[FIRST_ENV] = str(write_ids(folder / "run-first.jsonl", self.first))
        return env
