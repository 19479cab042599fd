"""Quarantine, kept in the repository: tests that still run and are reported, but whose
failures do not fail the run, each with a reason and an optional expiry date.

``[tool.noxlib] quarantine`` is a list of ``{ id, reason, expires }`` tables, or the path of
a TOML file (relative to the project) whose ``quarantine`` key holds that list. Pure, but for
reading that file.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.durations import file_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KEYS = ("id", "reason", "expires")
EXAMPLE = '{ id = "tests/test_x.py::test_y", reason = "flaky: issue 12", expires = 2027-03-01 }'


@dataclass(frozen=True)
class Entry:
    """One quarantined test id (or test file: it covers every test of it)."""

    nodeid: str
    reason: str
    expires: datetime.date | None = None
    source: str = ""  # where it was written, for the messages

    def covers(self, nodeid: str) -> bool:
        return nodeid == self.nodeid or file_of(nodeid) == self.nodeid

    def expired(self, today: datetime.date) -> bool:
        return self.expires is not None and self.expires < today

    def describe(self) -> str:
        until = f", until {self.expires.isoformat()}" if self.expires else ""
        return f"quarantined: {self.reason}{until}"


def read_entries(value: object, root: Path, source: Path) -> tuple[list[Entry], list[str]]:
    """The entries of the ``quarantine`` setting ``value`` (from ``source``), and a message per
    problem, each naming the entry and how to fix it."""
    if isinstance(value, str):
        return _read_file(root / value, value)
    if not isinstance(value, list):
        return [], [
            f"tool.noxlib.quarantine = {value!r}: expected a list like [{EXAMPLE}], "
            "or the path of a TOML file holding such a list under 'quarantine'"
        ]
    return _parse(value, f"tool.noxlib.quarantine in {source.name}")


def _read_file(path: Path, written: str) -> tuple[list[Entry], list[str]]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], [
            f"tool.noxlib.quarantine = {written!r}: no such file {path}. Create it "
            f"with: quarantine = [{EXAMPLE}]"
        ]
    except tomllib.TOMLDecodeError as exc:
        return [], [f"tool.noxlib.quarantine = {written!r}: {path} is not valid TOML: {exc}"]
    entries = document.get("quarantine")
    if not isinstance(entries, list):
        return [], [f"{path}: expected a list under 'quarantine', like quarantine = [{EXAMPLE}]"]
    return _parse(entries, str(path))


def _parse(raw: Sequence[object], where: str) -> tuple[list[Entry], list[str]]:
    entries: list[Entry] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        name = f"{where}, entry {index + 1}"
        entry, problem = _entry(item, name)
        if problem:
            problems.append(f"{name} = {item!r}: {problem}")
        elif entry is not None:
            entries.append(entry)
    return entries, problems


def _entry(item: object, where: str) -> tuple[Entry | None, str]:
    if not isinstance(item, dict):
        return None, f"expected a table like {EXAMPLE}"
    unknown = sorted(set(item) - set(KEYS))
    if unknown:
        return None, f"unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}"
    nodeid, reason, expires = item.get("id"), item.get("reason"), item.get("expires")
    if not (isinstance(nodeid, str) and nodeid.strip()):
        return None, "'id' must be a test id or test file, e.g. \"tests/test_x.py::test_y\""
    if not (isinstance(reason, str) and reason.strip()):
        return None, "'reason' must say why (an issue link, say): a quarantine needs a reason"
    if expires is not None and not (
        isinstance(expires, datetime.date) and not isinstance(expires, datetime.datetime)
    ):
        return None, "'expires' must be a TOML date without quotes, e.g. expires = 2027-03-01"
    return Entry(nodeid.strip(), reason.strip(), expires, where), ""


@dataclass(frozen=True)
class Verdict:
    """What the quarantine says of one run: the failing tests it covers (id -> entry), the
    entries that have expired, and those that match no collected test."""

    covered: dict[str, Entry]
    expired: tuple[Entry, ...]
    unmatched: tuple[Entry, ...]

    def expired_line(self) -> str:
        names = "; ".join(f"{e.nodeid} (expired {e.expires}, {e.source})" for e in self.expired)
        return (
            f"quarantine entry expired: {names}. Fix the test and remove the entry, or set a "
            "later 'expires' in review"
        )


def judge(
    entries: Sequence[Entry], failing: Iterable[str], collected: Iterable[str], today: datetime.date
) -> Verdict:
    """Which ``failing`` tests the unexpired ``entries`` cover, which entries expired, and which
    match none of the ``collected`` tests (a renamed or deleted test leaves its entry behind)."""
    live = [e for e in entries if not e.expired(today)]
    covered = {}
    for nodeid in failing:
        entry = next((e for e in live if e.covers(nodeid)), None)
        if entry is not None:
            covered[nodeid] = entry
    ids = list(collected)
    unmatched = tuple(e for e in entries if not any(e.covers(n) for n in ids))
    return Verdict(covered, tuple(e for e in entries if e.expired(today)), unmatched)
