"""The one format of every file that holds test ids: JSON lines, one JSON string a line.

pytest's ids can hold any character once its id escaping is turned off
(``disable_test_id_escaping_and_forfeit_all_rights_to_community_support``), line separators
such as ``\\u2028`` and ``\\x85`` among them; a file of plain lines would split such an id in
two. ``json.dumps`` escapes every character outside ASCII, so a written line holds no separator
but its own newline, and reading splits on ``\\n`` alone. Standard library only: every pytest
process of a run reads these files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from pathlib import Path

from noxlib.jsonlines import values


def encode(nodeid: str) -> str:
    """One line of an id file (with its newline) for ``nodeid``: what ``json.dumps`` gives, by
    the function it calls for a string (this runs once per test)."""
    return encode_basestring_ascii(nodeid) + "\n"


def write_ids(path: Path, nodeids: Iterable[str]) -> Path:
    """Write ``nodeids`` to ``path`` whole, replacing it (readers see the old or the new file)."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text("".join(map(encode, nodeids)), encoding="utf-8")
    partial.replace(path)
    return path


def append_id(fd: int, nodeid: str) -> None:
    """Add ``nodeid`` to an id file open for appending (`open_append`): one ``write(2)``, so
    the line is the kernel's, and survives the process, as soon as this returns."""
    os.write(fd, encode(nodeid).encode("ascii"))


def open_append(path: Path) -> int:
    """A descriptor that appends to ``path`` (created with the umask's mode), unbuffered."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)


def read_ids(path: Path) -> list[str]:
    """The ids of ``path`` in file order ([] when it does not exist); a line torn by a writer
    that died half-way is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [value for value in values(data) if isinstance(value, str)]
