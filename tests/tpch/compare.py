"""Compare two engines' results of one query, and say precisely where they differ.

Two values compare by the type of the reference engine's value, which is the type the spec
gives the column (DuckDB implements the spec's types):

- integers (keys, counts, years) exactly: an answer off by one is a different answer at any
  size;
- decimals (DECIMAL(p, s): sums of money and quantities) exactly against an exact value (an
  integer, or a decimal, at the coarser scale of the two), and against a float at their own
  scale: the float must round to the decimal there (see :func:`values_equal`);
- floats (DOUBLE: averages, ratios) within a relative tolerance that bounds the rounding
  error of a binary float sum (:func:`float_tolerance`): DuckDB computes these from exact
  decimal sums, SQLite adds binary floats one by one, and the difference grows with the
  number of rows summed, not with the size of the numbers;
- everything else (text, ISO dates, NULL) exactly, and of the same type.

Rows compare in order when the query orders them, else as multisets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from .servers.queryserver import python_value

# u, the unit roundoff of binary64: one rounding errs by at most this fraction of its result.
UNIT_ROUNDOFF = 2.0**-53
# Decimal arithmetic with room for every digit of a DECIMAL(38, s) and of a float's exact
# binary value, so that comparing never rounds (the default context keeps 28 digits).
EXACT = Context(prec=100, rounding=ROUND_HALF_EVEN)
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
        rows = tuple(tuple(python_value(v) for v in row) for row in payload["rows"])
        return cls(engine, tuple(payload["columns"]), rows)

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


def float_tolerance(summed_rows: int) -> float:
    """The relative tolerance of a float result computed from sums of ``summed_rows`` rows.

    Adding n binary floats one after the other, as SQLite's SUM and AVG do, errs by at most
    (n - 1) * u * (|x_1| + ... + |x_n|) (Higham, Accuracy and Stability of Numerical
    Algorithms, 2nd ed., section 4.2). TPC-H sums prices, quantities and discounts, which are
    positive (Q9's profit terms nearly all are), so that sum of magnitudes is the result
    itself, and the rows that all the sums of one value run over, counted once per sum,
    never outnumber lineitem's (Q14's two sums run over one month of it). The rounding of
    each term's own arithmetic (a few u) is negligible beside n * u. This is a bound, not an
    estimate: at SF 0.01 and 0.1 the largest errors measured are 20 to 45 times smaller.
    """
    return max(summed_rows, 1) * UNIT_ROUNDOFF


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _scale(value: Decimal) -> int:
    """The places after the point: 2 for Decimal('17.00'), as the engine typed the value."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def _at_scale(value: Decimal, scale: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-scale), context=EXACT)


def _decimal_equal(expected: Decimal, actual: int | float | Decimal, rel_tol: float) -> bool:
    if isinstance(actual, int):
        return expected == actual  # exact: an integer has every scale (SQLite's sum_qty)
    if isinstance(actual, Decimal):
        # Exact at the coarser of the two scales, to which the finer value is rounded. Two
        # engines may type the same expression with different scales (a quotient, an
        # average); the one with fewer places has rounded there, and the places both give
        # are all that both claim. Equal scales: plain equality.
        scale = min(_scale(expected), _scale(actual))
        return _at_scale(expected, scale) == _at_scale(actual, scale)
    # A float: the engine (SQLite) computed the decimal arithmetic in binary floats, which
    # cannot be exact, so "exact" means at the decimal's own scale: the float must round to
    # the decimal there, that is lie within half a unit of its last place. A sum of
    # DECIMAL(15, 2) values is a number of whole cents; a float sum within half a cent of it
    # identifies it, and one cent more or less is a different answer. Where the scale is
    # finer than float sums can hold (Q1's sum_charge has 6 places; at SF 0.01 SQLite's float
    # sum of 5.3e8 is 2.9e-6 off), the float sum's own error bound (float_tolerance) widens
    # it (to 0.0035 there: still less than half a cent).
    half_unit = Decimal(5).scaleb(-_scale(expected) - 1)
    bound = max(half_unit, EXACT.multiply(EXACT.abs(expected), Decimal(rel_tol)))
    return EXACT.abs(EXACT.subtract(Decimal(actual), expected)) <= bound


def values_equal(expected: Any, actual: Any, *, rel_tol: float) -> bool:
    """Whether ``actual`` is ``expected`` (the reference engine's value) as the suite means it:
    by the type of ``expected`` (see the module's docstring), ``rel_tol`` for floats."""
    if not (_is_number(expected) and _is_number(actual)):
        return expected == actual and type(expected) is type(actual)
    if isinstance(expected, int):
        # Exact, and Python compares an int with a float exactly: 17 == 17.0, never 17.000001.
        return expected == actual
    if isinstance(expected, Decimal):
        return _decimal_equal(expected, actual, rel_tol)
    # No absolute tolerance: TPC-H's float results are sums of positive amounts and their
    # averages and ratios, so one is zero only as a sum of zeros (Q8's market shares at SF
    # 0.01), which floats add exactly; otherwise the smallest are a few hundredths (Q1's
    # average discounts), where the relative tolerance means what it says.
    return math.isclose(expected, float(actual), rel_tol=rel_tol, abs_tol=0.0)


def rows_equal(a: Sequence[Any], b: Sequence[Any], *, rel_tol: float) -> bool:
    return len(a) == len(b) and all(
        values_equal(x, y, rel_tol=rel_tol) for x, y in zip(a, b, strict=True)
    )


def _first_difference(
    a: Sequence[Any], b: Sequence[Any], columns: Sequence[str], *, rel_tol: float
) -> str:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if not values_equal(x, y, rel_tol=rel_tol):
            name = columns[index] if index < len(columns) else f"#{index}"
            return f"column {index + 1} ({name}): {x!r} != {y!r}"
    return f"{len(a)} values != {len(b)} values"


def _show(rows: Sequence[Sequence[Any]]) -> str:
    lines = [f"    {list(r)!r}" for r in rows[:SHOWN_ROWS]]
    if len(rows) > SHOWN_ROWS:
        lines.append(f"    ... and {len(rows) - SHOWN_ROWS} more")
    return "\n".join(lines)


def _compare_ordered(expected: Result, actual: Result, *, rel_tol: float) -> None:
    for index, (want, got) in enumerate(zip(expected.rows, actual.rows, strict=True)):
        if not rows_equal(want, got, rel_tol=rel_tol):
            diff = _first_difference(want, got, expected.columns, rel_tol=rel_tol)
            raise Mismatch(
                f"row {index + 1} of the ordered result differs, {diff}\n"
                f"  {expected.engine}: {list(want)!r}\n  {actual.engine}: {list(got)!r}"
            )


def _unmatched(
    want: list[tuple[Any, ...]], got: list[tuple[Any, ...]], *, rel_tol: float
) -> tuple[list, list]:
    """Rows of each side with no equal row on the other side (multiset difference)."""
    counts = Counter(want)
    if counts == Counter(got):  # fast path: exactly equal, as most text-only results are
        return [], []
    missing, extra = list(want), []
    for row in got:
        match = next(
            (i for i, w in enumerate(missing) if rows_equal(w, row, rel_tol=rel_tol)), None
        )
        if match is None:
            extra.append(row)
        else:
            missing.pop(match)
    return missing, extra


def _compare_unordered(expected: Result, actual: Result, *, rel_tol: float) -> None:
    missing, extra = _unmatched(list(expected.rows), list(actual.rows), rel_tol=rel_tol)
    if missing or extra:
        raise Mismatch(
            f"the results differ as multisets of rows (the query does not order them)\n"
            f"  only in {expected.engine} ({len(missing)}):\n{_show(missing)}\n"
            f"  only in {actual.engine} ({len(extra)}):\n{_show(extra)}"
        )


def assert_same_result(expected: Result, actual: Result, *, ordered: bool, rel_tol: float) -> None:
    """Raise :class:`Mismatch` unless ``actual`` answers the query as ``expected`` does.

    ``expected`` is the reference engine's result and ``actual`` the engine under test;
    ``ordered`` says whether the query's ORDER BY makes row order part of the answer;
    ``rel_tol`` is the relative tolerance of floats (:func:`float_tolerance`).
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
        _compare_ordered(expected, actual, rel_tol=rel_tol)
    else:
        _compare_unordered(expected, actual, rel_tol=rel_tol)
