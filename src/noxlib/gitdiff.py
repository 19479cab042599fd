"""What git says changed since a commit: the few git commands ``--affected`` needs.

Standard library only. Every path is relative to the project root (the folder the commands run
in, which may be a subfolder of the repository), as the map stores them; a changed file of the
repository outside that folder is named from it, ``../shared/lib.py``, so it is never lost. A
git failure is a ``GitError`` with git's own words: the caller turns it into "every test runs,
because ...".
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


class GitError(Exception):
    """git could not answer (not a repository, unknown commit, git missing)."""


# A hunk header of `git diff -U0`: each side's start and count (count 1 when left out).
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    """One change: on the old side, ``count`` lines from line ``start`` were replaced or
    removed (``count == 0``: lines were inserted after line ``start``); on the new side,
    ``new_count`` lines from ``new_start`` replace them."""

    start: int
    count: int
    new_start: int = 0
    new_count: int = 0


@dataclass(frozen=True)
class FileChange:
    """One changed path: ``status`` is ``modified``, ``added``, ``deleted`` or ``untracked``;
    ``hunks`` are filled for a modified file."""

    path: str
    status: str
    hunks: tuple[Hunk, ...] = field(default=())


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            errors="replace",  # a binary file's lines must not stop the diff
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        words = done.stderr.strip().splitlines()
        raise GitError(words[-1] if words else f"git {args[0]} exited {done.returncode}")
    return done.stdout


def head_commit(root: Path) -> str:
    """The full id of HEAD in the repository that holds ``root``."""
    return _git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()


def has_commit(root: Path, commit: str) -> bool:
    """Whether this repository has ``commit`` (a shallow CI clone or a rewritten history may
    not)."""
    try:
        _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except GitError:
        return False
    return True


def dirty_paths(root: Path) -> list[str]:
    """Paths under ``root`` that differ from HEAD, or are untracked and not ignored."""
    changed = _git(root, "diff", "--name-only", "--relative", "--no-renames", "HEAD")
    return sorted({*changed.splitlines(), *untracked(root)} - {""})


def tracked(root: Path) -> set[str]:
    """The files under ``root`` git tracks, relative to ``root``."""
    return {p for p in _git(root, "ls-files").splitlines() if p}


def untracked(root: Path) -> list[str]:
    """Untracked, not ignored files under ``root``."""
    return [p for p in _git(root, "ls-files", "--others", "--exclude-standard").splitlines() if p]


def changes_since(root: Path, commit: str) -> list[FileChange]:
    """Every path of the repository that differs between ``commit`` and the working tree
    (staged or not), and every untracked file, named from ``root`` and sorted by path. The
    whole repository is asked, not only ``root``: tests may import files beside it."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    base = ("diff", "--no-renames", "--no-ext-diff", "--no-color")
    statuses = parse_name_status(_git(top, *base, "--name-status", commit))
    hunks = parse_hunks(_git(top, *base, "-U0", commit))
    found = [FileChange(path, status, hunks.get(path, ())) for path, status in statuses.items()]
    found += [FileChange(path, "untracked") for path in untracked(top) if path not in statuses]
    named = [FileChange(from_root(top, root, c.path), c.status, c.hunks) for c in found]
    return sorted(named, key=lambda change: change.path)


def from_root(top: Path, root: Path, path: str) -> str:
    """``path`` (relative to the repository's ``top``) as seen from ``root``: ``pkg/a.py`` for
    a file inside it, ``../shared/b.py`` for one beside it."""
    return Path(os.path.relpath(top.resolve() / path, root.resolve())).as_posix()


_STATUS = {"M": "modified", "A": "added", "D": "deleted", "T": "modified"}


def parse_name_status(text: str) -> dict[str, str]:
    """``git diff --name-status`` output -> {path: status}; a status git may add later counts
    as modified (its lines are in the hunks all the same)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        code, _, path = line.partition("\t")
        if path:
            found[path] = _STATUS.get(code[:1], "modified")
    return found


def parse_hunks(text: str) -> dict[str, tuple[Hunk, ...]]:
    """``git diff -U0`` output -> {path: the old side of each hunk}. Binary files have none."""
    found: dict[str, list[Hunk]] = {}
    path: str | None = None
    for line in text.splitlines():
        if line.startswith("diff --git "):
            path = None
        elif line.startswith("--- "):
            path = None  # the new side's name follows; a deleted file keeps its old name
            old = line[4:]
            if old != "/dev/null":
                path = _strip_prefix(old)
        elif line.startswith("+++ "):
            new = line[4:]
            if new != "/dev/null":
                path = _strip_prefix(new)
        elif path is not None and (match := _HUNK.match(line)):
            count = 1 if match.group(2) is None else int(match.group(2))
            new_count = 1 if match.group(4) is None else int(match.group(4))
            hunk = Hunk(int(match.group(1)), count, int(match.group(3)), new_count)
            found.setdefault(path, []).append(hunk)
    return {key: tuple(value) for key, value in found.items()}


def _strip_prefix(name: str) -> str:
    # git prints a/ and b/ before paths (diff.noprefix aside) and quotes unusual names.
    name = name.strip('"')
    return name[2:] if name[:2] in ("a/", "b/") else name


def old_text(root: Path, commit: str, path: str) -> str | None:
    """The text of ``path`` (relative to ``root``) at ``commit``; None when it did not exist
    there."""
    try:
        return _git(root, "show", f"{commit}:./{path}")
    except GitError:
        return None


def short(commit: str, length: int = 7) -> str:
    return commit[:length]


def is_tracked(root: Path, path: Path) -> bool:
    """Whether git tracks ``path`` (False outside a repository, or without git)."""
    try:
        _git(root, "ls-files", "--error-unmatch", "--", str(path))
    except GitError:
        return False
    return True
