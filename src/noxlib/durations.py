"""The durations file: each test's recorded seconds, in pytest-split's format.

A JSON object from node id to seconds (``.test_durations``), so a project coming from
pytest-split keeps its file and its figures. Pure mechanics (json only): read with errors that
name the file, replaced atomically, and merged run after run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring_ascii as quoted
from pathlib import Path

from noxlib.errors import UsageError
from noxlib.files import write_atomic

DEFAULT_DURATIONS_FILE = ".test_durations"
# The lock file (in the state folder) that serialises updates of the durations file.
DURATIONS_LOCK = "durations.lock"


def file_of(nodeid: str) -> str:
    """The file part of a pytest node id (``tests/a.py::T::t[1]`` -> ``tests/a.py``)."""
    return nodeid.split("::", 1)[0]


def read_durations(path: Path) -> dict[str, float]:
    """The durations file at ``path`` as ``{node id: seconds}``; {} when it does not exist.

    Raises UsageError naming the file when it is not a JSON object from strings to numbers:
    a plan from a garbled file would be silently unbalanced.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad_durations(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad_durations(path, f"it holds a JSON {type(data).__name__}, not an object")
    for key, value in data.items():
        if not _seconds(value):
            raise _bad_durations(path, f"test {key!r} has {value!r}, not a number of seconds")
    return {str(k): float(v) for k, v in data.items()}


def _seconds(value: object) -> bool:
    # Python's json reads NaN and Infinity: neither is a duration.
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value >= 0


def _bad_durations(path: Path, why: str) -> UsageError:
    return UsageError(
        f"The durations file {path} cannot be used: {why}. It maps pytest node ids to seconds, "
        '{"tests/test_a.py::test_x": 0.12}. Fix it, or delete it: the next run writes a new one.'
    )


def write_durations(path: Path, durations: Mapping[str, float]) -> None:
    """Replace the durations file at ``path`` atomically (a concurrent reader sees old or new)."""
    write_atomic(path, durations_text(durations) + "\n")


def durations_text(durations: Mapping[str, float]) -> str:
    """The file's text: what ``json.dumps(..., indent=1)`` of the sorted, rounded figures
    writes (a test a line, so a diff names the tests that changed). Built from the C encoder's
    pieces: json's indenting encoder is pure Python, and takes a third of a second on a suite
    of 200,000 tests."""
    if not durations:
        return "{}"
    rows = (f" {quoted(k)}: {round(float(v), 4)!r}" for k, v in sorted(durations.items()))
    return "{\n" + ",\n".join(rows) + "\n}"


def merge_durations(
    old: Mapping[str, float],
    measured: Mapping[str, float],
    *,
    collected: Iterable[str] = (),
    full_files: Iterable[str] = (),
    existing_file: Callable[[str], bool] | None = None,
) -> dict[str, float]:
    """``old`` updated with the ``measured`` figures of one run.

    Ids that the run no longer collects are dropped: those whose file the run collected whole
    (``full_files``) but which are not in ``collected``, and those whose file no longer exists
    (``existing_file(path)`` is False). Every other id keeps its old figure: a run of one group
    must not forget the others.
    """
    merged = dict(old)
    merged.update(measured)
    seen = set(collected)
    whole = set(full_files)
    for nodeid in list(merged):
        path = file_of(nodeid)
        gone_from_file = path in whole and nodeid not in seen and nodeid not in measured
        if gone_from_file or (existing_file is not None and not existing_file(path)):
            del merged[nodeid]
    return merged
