"""Reading the JSON-lines files a run writes (results, ids, events): one JSON value a line.

A results file of a 200,000-test suite has 200,000 lines, and one ``json.loads`` per line is
most of what reading it costs. `values` parses all of a file's lines in one call, as one JSON
array, and falls back to one call per line only when that fails: a line torn by a writer that
died, or edited by hand. Standard library only: pytest processes read these files too.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path


def values(data: bytes) -> list[object]:
    """The JSON value of each non-blank line of ``data``, in order; a line that is not one
    whole JSON value is skipped."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return []
    with contextlib.suppress(ValueError):
        found = json.loads(b"[" + b",".join(lines) + b"]")
        # As many values as lines: no line was torn into its neighbour, none held two values.
        if len(found) == len(lines):
            return list(found)
    return _one_by_one(lines)


def _one_by_one(lines: list[bytes]) -> list[object]:
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return found


@dataclass
class Tail:
    """Reads the JSON lines a growing file gained since the last look: a part's results or
    the tests it started, while its process runs. A line still being written waits for its
    end; a torn one is skipped."""

    path: Path
    offset: int = 0
    rest: bytes = b""

    def new_lines(self) -> list[object]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *complete, self.rest = (self.rest + data).split(b"\n")
        return _one_by_one([line for line in complete if line.strip()])
