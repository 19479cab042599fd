"""The checks of ``[tool.noxlib]``'s values, and the list that collects every problem.

Pure: each check takes a value from the table and says whether it is good; ``SCALARS`` holds,
for every top-level key with a plain value, its check and the second half of its message.
``config.py`` reads the table with them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from pathlib import Path

from noxlib.durations import DEFAULT_DURATIONS_FILE
from noxlib.errors import ConfigError
from noxlib.options import ENGINES
from noxlib.parts import KEEP_TOGETHER

DIST_MODES = ("load", "loadscope", "loadfile", "loadgroup", "worksteal")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*$")
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


class Problems:
    """Collects problems with the table so that one error lists them all."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.messages: list[str] = []

    def add(self, key: str, value: object, fix: str) -> None:
        # Each problem is one sentence: the key, its value, the fix, one full stop.
        end = "" if fix.endswith((".", "?")) else "."
        self.messages.append(f"tool.noxlib.{key} = {value!r}: {fix}{end}")

    def raise_if_any(self) -> None:
        if self.messages:
            lines = "\n".join(f"  - {m}" for m in self.messages)
            raise ConfigError(f"Invalid [tool.noxlib] in {self.source}:\n{lines}")


def parse_size(text: str) -> int:
    """Turn ``"2GiB"`` or ``"512 MB"`` into bytes; raise ValueError for anything else,
    including sizes under one byte."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(text)
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < 1:
        raise ValueError(text)
    return size


# Below this no pytest process fits: the interpreter and pytest alone take some 30 MiB.
MIN_WORKER_MEMORY = 64 * 2**20


def is_worker_size(value: object) -> bool:
    try:
        return isinstance(value, str) and parse_size(value) >= MIN_WORKER_MEMORY
    except ValueError:
        return False


def string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def positive_number(value: object) -> bool:
    # TOML has inf and nan: neither is a number of seconds or a percentage.
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


SESSION_NAMES = ("tests", "tests-parallel", "ci")
TRIAGE_SESSIONS = ("tests-parallel", "ci")


def session_list(value: object) -> bool:
    return isinstance(value, list) and all(v in SESSION_NAMES for v in value)


# Top-level keys: name -> (check, fix text). The fix text is the second half of the message.
Check = Callable[[object], bool]
SCALARS: dict[str, tuple[Check, str]] = {
    "install": (string_list, 'expected a list of pip arguments, e.g. install = ["-e", ".[test]"]'),
    "test-requirements": (
        string_list,
        'expected a list of requirements, e.g. test-requirements = ["hypothesis"]',
    ),
    "dependency-groups": (
        string_list,
        "expected a list of [dependency-groups] names (PEP 735), "
        'e.g. dependency-groups = ["tests"]',
    ),
    "default-groups": (string_list, 'expected a list of group names, e.g. ["unit"]'),
    "memory-per-worker": (
        is_worker_size,
        "expected a size of at least 64MiB (one pytest process needs some 30 MiB) with a unit "
        '(B, KB, MB, GB, KiB, MiB, GiB), e.g. "2GiB"',
    ),
    "max-workers": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "expected a whole number of at least 1, e.g. max-workers = 8",
    ),
    "dist": (
        lambda v: v in DIST_MODES,
        f"expected one of {', '.join(DIST_MODES)} (pytest-xdist --dist modes)",
    ),
    "engine": (
        lambda v: v in ENGINES,
        f"expected one of {', '.join(ENGINES)}: how parallel sessions run their tests",
    ),
    "keep-together": (
        lambda v: v in KEEP_TOGETHER,
        f"expected one of {', '.join(KEEP_TOGETHER)}: what a shard never splits",
    ),
    "gc-freeze": (
        lambda v: isinstance(v, bool),
        "expected true or false: whether the collected tests leave the garbage collector's "
        "rounds once collection is done (false for suites that test garbage collection itself)",
    ),
    "durations-file": (
        lambda v: isinstance(v, str) and bool(v.strip()),
        f'expected a file path relative to the project, e.g. "{DEFAULT_DURATIONS_FILE}"',
    ),
    "reports-dir": (
        lambda v: isinstance(v, str) and bool(v),
        'expected a folder path relative to the project, e.g. "reports"',
    ),
    "ci-timeout": (
        positive_number,
        "expected seconds per test in CI mode as a number >= 0 (0 turns the timeout off)",
    ),
    "relaunch-cap": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "expected a whole number of at least 1: how many pytest processes one part may start "
        "after deaths in its tests, e.g. relaunch-cap = 50",
    ),
    "report-all-tests": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "expected a whole number >= 0: runs with at most this many tests list every test's time",
    ),
    "reap-grace": (
        positive_number,
        "expected seconds between SIGTERM and SIGKILL as a number >= 0, e.g. 1.0",
    ),
    "triage": (
        lambda v: isinstance(v, bool),
        "expected true or false: whether failed tests are rerun serially and classified",
    ),
    "triage-sessions": (
        session_list,
        "expected a list of the sessions that triage by default, from tests, tests-parallel, "
        'ci, e.g. ["tests-parallel", "ci"]',
    ),
    "triage-max": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "expected a whole number >= 0: at most this many failed tests are rerun, e.g. 50",
    ),
    "triage-reruns": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "expected a whole number >= 1: reruns of each failed test alone (and in its "
        "company), e.g. 2",
    ),
    "triage-budget": (
        positive_number,
        "expected seconds >= 0 that the company reruns and polluter searches of one run may "
        "take together, e.g. 60 (0: no company reruns)",
    ),
    "tolerate-flaky": (
        lambda v: isinstance(v, bool),
        "expected true or false: true lets a run pass whose failures are all flaky or "
        "parallel-only (reported as warnings)",
    ),
    "flaky-threshold": (
        lambda v: positive_number(v) and float(str(v)) <= 100,
        "expected a percentage from 0 to 100: the flakiness rate above which to roll back, e.g. 5",
    ),
    "auto-rollback": (
        lambda v: isinstance(v, bool),
        "expected true or false: true makes 'auto' workers 1 while flakiness is above "
        "flaky-threshold",
    ),
}


def unknown_key(
    problems: Problems, prefix: str, key: str, value: object, known: tuple[str, ...]
) -> None:
    guess = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{guess[0]}'?" if guess else f"known keys: {', '.join(known)}"
    problems.add(f"{prefix}{key}", value, f"unknown key; {hint}")
