"""Compare two engines' results of one query, and say precisely where they differ.

Numbers compare with a tolerance because the engines compute differently on purpose: DuckDB
sums DECIMAL values exactly, SQLite sums binary floats. Everything else (text, ISO dates,
NULL) compares exactly. Rows compare in order when the query orders them, else as multisets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Relative: SQLite's float sums of SF 0.01 prices stay within ~1e-12 of the exact decimals;
# 1e-9 leaves room for bigger scale factors yet still catches a single row in or out.
REL_TOL = 1e-9
# Absolute: for results near zero, where a relative tolerance means nothing.
ABS_TOL = 1e-6
# Rows of a mismatch shown in a message: enough to see the pattern, not a wall of text.
SHOWN_ROWS = 5


@dataclass(frozen=True)
class Result:
    """One engine's answer to one query: column names and rows of JSON-safe values."""

    engine: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @classmethod
    def from_json(cls, engine: str, payload: dict[str, Any]) -> Result:
        return cls(engine, tuple(payload["columns"]), tuple(tuple(r) for r in payload["rows"]))

    def has_values(self) -> bool:
        """Whether any value is not NULL: an all-NULL answer proves nothing when it matches."""
        return any(v is not None for row in self.rows for v in row)


class Mismatch(AssertionError):
    """The engines disagree; the message says where and how."""


class NothingToCompare(AssertionError):
    """The reference answered only NULL (or nothing): a match with it would check nothing."""


def assert_has_values(result: Result) -> None:
    """Raise :class:`NothingToCompare` unless ``result`` has a value that is not NULL."""
    if not result.has_values():
        raise NothingToCompare(
            f"{result.engine} answers only NULL ({len(result.rows)} row(s)), so a match checks "
            f"nothing: choose substitution parameters that select rows at this scale factor"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_equal(a: Any, b: Any) -> bool:
    """Equal as the suite means it: numbers within tolerance, everything else exactly."""
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b and type(a) is type(b)


def rows_equal(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))


def _first_difference(a: Sequence[Any], b: Sequence[Any], columns: Sequence[str]) -> str:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if not values_equal(x, y):
            name = columns[index] if index < len(columns) else f"#{index}"
            return f"column {index + 1} ({name}): {x!r} != {y!r}"
    return f"{len(a)} values != {len(b)} values"


def _show(rows: Sequence[Sequence[Any]]) -> str:
    lines = [f"    {list(r)!r}" for r in rows[:SHOWN_ROWS]]
    if len(rows) > SHOWN_ROWS:
        lines.append(f"    ... and {len(rows) - SHOWN_ROWS} more")
    return "\n".join(lines)


def _compare_ordered(expected: Result, actual: Result) -> None:
    for index, (want, got) in enumerate(zip(expected.rows, actual.rows, strict=True)):
        if not rows_equal(want, got):
            diff = _first_difference(want, got, expected.columns)
            raise Mismatch(
                f"row {index + 1} of the ordered result differs, {diff}\n"
                f"  {expected.engine}: {list(want)!r}\n  {actual.engine}: {list(got)!r}"
            )


def _unmatched(want: list[tuple[Any, ...]], got: list[tuple[Any, ...]]) -> tuple[list, list]:
    """Rows of each side with no equal row on the other side (multiset difference)."""
    counts = Counter(want)
    if counts == Counter(got):  # fast path: exactly equal, as most text-only results are
        return [], []
    missing, extra = list(want), []
    for row in got:
        match = next((i for i, w in enumerate(missing) if rows_equal(w, row)), None)
        if match is None:
            extra.append(row)
        else:
            missing.pop(match)
    return missing, extra


def _compare_unordered(expected: Result, actual: Result) -> None:
    missing, extra = _unmatched(list(expected.rows), list(actual.rows))
    if missing or extra:
        raise Mismatch(
            f"the results differ as multisets of rows (the query does not order them)\n"
            f"  only in {expected.engine} ({len(missing)}):\n{_show(missing)}\n"
            f"  only in {actual.engine} ({len(extra)}):\n{_show(extra)}"
        )


def assert_same_result(expected: Result, actual: Result, *, ordered: bool) -> None:
    """Raise :class:`Mismatch` unless ``actual`` answers the query as ``expected`` does.

    ``expected`` is the reference engine's result and ``actual`` the engine under test;
    ``ordered`` says whether the query's ORDER BY makes row order part of the answer.
    """
    if len(expected.columns) != len(actual.columns):
        raise Mismatch(
            f"{expected.engine} returned {len(expected.columns)} columns "
            f"{list(expected.columns)}, {actual.engine} {len(actual.columns)} "
            f"{list(actual.columns)}"
        )
    if len(expected.rows) != len(actual.rows):
        raise Mismatch(
            f"{expected.engine} returned {len(expected.rows)} rows, "
            f"{actual.engine} {len(actual.rows)}\n"
            f"  {expected.engine} starts with:\n{_show(expected.rows)}\n"
            f"  {actual.engine} starts with:\n{_show(actual.rows)}"
        )
    if ordered:
        _compare_ordered(expected, actual)
    else:
        _compare_unordered(expected, actual)
