"""The comparison can fail: results that differ in value, count, order or type are caught."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from .compare import (
    Mismatch,
    NothingToCompare,
    Result,
    assert_has_values,
    assert_same_result,
    float_tolerance,
    values_equal,
)
from .datagen import lineitem_rows
from .servers.queryserver import json_value

COLUMNS = ("l_returnflag", "sum_qty", "avg_price", "l_shipdate")
ROWS = (("A", 380456, 35785.709306937344, "1992-01-04"), ("N", 8971, 36234.5, None))


# The floats' tolerance at SF 0.01, the default: 6.7e-12.
REL_TOL = float_tolerance(lineitem_rows("0.01"))


def same(expected: Result, actual: Result, *, ordered: bool) -> None:
    assert_same_result(expected, actual, ordered=ordered, rel_tol=REL_TOL)


def equal(expected: object, actual: object) -> bool:
    return values_equal(expected, actual, rel_tol=REL_TOL)


def result(engine: str, rows: tuple[tuple[object, ...], ...] = ROWS) -> Result:
    return Result(engine, COLUMNS, rows)


def changed(row: int, column: int, value: object) -> tuple[tuple[object, ...], ...]:
    rows = [list(r) for r in ROWS]
    rows[row][column] = value
    return tuple(tuple(r) for r in rows)


@pytest.mark.parametrize("ordered", [True, False])
def test_equal_results_match(ordered: bool) -> None:
    same(result("duckdb"), result("sqlite"), ordered=ordered)


def test_float_noise_is_tolerated() -> None:
    # What SQLite's binary float sums do to an exact decimal sum.
    noisy = changed(0, 2, 35785.709306937344 * (1 + 1e-12))
    same(result("duckdb"), result("sqlite", noisy), ordered=True)


# Each pair is what the old rule (relative 1e-9 for every number) let through.
@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        # Integers, exactly: a HUGEINT sum of 1e10 off by one (the old rule allowed +-10) ...
        (10_000_000_000, 10_000_000_001),
        # ... and a count that comes back as a float a little off.
        (17, 17.000000001),
        # Floats near 1e8 and beyond, at SF 0.01 within +-6.7e-12 (+-0.0035 at 5.3e8, the size
        # of Q1's sums there), where the old rule allowed +-1e-9 of them (+-0.53 at 5.3e8).
        (526165934.0008392, 526165934.4008392),
        (123456789.5, 123456789.55),
    ],
)
def test_a_number_off_by_more_than_float_rounding_is_caught(
    expected: object, actual: object
) -> None:
    assert not equal(expected, actual)
    with pytest.raises(Mismatch, match=r"only in duckdb \(1\)"):
        same(
            Result("duckdb", ("x",), ((expected,),)),
            Result("sqlite", ("x",), ((actual,),)),
            ordered=False,
        )


def test_integers_compare_exactly() -> None:
    assert equal(10_000_000_000, 10_000_000_000)
    assert equal(17, 17.0)  # an int and a float of the same value
    assert not equal(380456, 380457)


def test_a_float_sum_within_the_relative_tolerance_passes() -> None:
    # Q1's sum_charge at SF 0.01 as SQLite sums it, and what 1e-12 of noise makes of it: well
    # within the tolerance (+-0.0035), which is the worst case of adding 60,000 floats.
    assert equal(526165934.0008392, 526165934.0008392 * (1 + 1e-12))
    assert equal(526165934.0008392, 526165934.0008392 * (1 - 5e-12))
    # Q1's avg_disc of N|O at SF 0.01 as DuckDB and SQLite answer it: 3.1e-13 apart, the
    # largest relative difference of a float in all 22 queries.
    assert equal(0.04993111956409993, 0.04993111956408442)
    assert not equal(526165934.0008392, 526165934.0008392 * (1 + 1e-11))


def test_the_float_tolerance_grows_with_the_rows_summed() -> None:
    # n * u: the bound on the error of adding n floats one after the other.
    assert float_tolerance(60_175) == pytest.approx(6.68e-12, rel=1e-3)
    assert float_tolerance(lineitem_rows("0.1")) == pytest.approx(10 * REL_TOL, rel=1e-3)
    assert float_tolerance(0) == 2.0**-53


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        (1, 380457, "column 2 (sum_qty): 380456 != 380457"),
        (2, 35785.71, "column 3 (avg_price)"),
        (0, "a", "column 1 (l_returnflag): 'A' != 'a'"),
        (3, "1992-01-05", "column 4 (l_shipdate)"),
        (3, None, "'1992-01-04' != None"),
    ],
)
def test_a_different_value_is_caught(column: int, value: object, shown: str) -> None:
    with pytest.raises(Mismatch, match="row 1 of the ordered result differs") as caught:
        same(result("duckdb"), result("sqlite", changed(0, column, value)), ordered=True)
    assert shown in str(caught.value)


def test_a_missing_row_is_caught() -> None:
    with pytest.raises(Mismatch, match="duckdb returned 2 rows, sqlite 1"):
        same(result("duckdb"), result("sqlite", ROWS[:1]), ordered=False)


def test_a_missing_column_is_caught() -> None:
    short = Result("sqlite", COLUMNS[:3], tuple(r[:3] for r in ROWS))
    with pytest.raises(Mismatch, match="4 columns"):
        same(result("duckdb"), short, ordered=True)


def test_order_counts_only_when_the_query_orders() -> None:
    swapped = result("sqlite", ROWS[::-1])
    same(result("duckdb"), swapped, ordered=False)
    with pytest.raises(Mismatch, match="row 1 of the ordered result"):
        same(result("duckdb"), swapped, ordered=True)


def test_unordered_rows_compare_as_a_multiset() -> None:
    # Same set of distinct rows, different multiplicities: not the same answer.
    twice_a = (ROWS[0], ROWS[0], ROWS[1])
    twice_n = (ROWS[0], ROWS[1], ROWS[1])
    with pytest.raises(Mismatch, match="as multisets") as caught:
        same(result("duckdb", twice_a), result("sqlite", twice_n), ordered=False)
    assert "only in duckdb (1)" in str(caught.value)


def test_types_matter_except_between_numbers() -> None:
    assert equal(17, 17.0)
    assert not equal("17", 17)
    assert not equal(None, 0)
    assert not equal(True, 1)


def test_an_answer_of_only_null_checks_nothing() -> None:
    # Q17 with the spec's validation parameters at SF 0.01: one row, NULL.
    with pytest.raises(NothingToCompare, match="only NULL"):
        assert_has_values(Result("duckdb", ("avg_yearly",), ((None,),)))
    with pytest.raises(NothingToCompare, match="only NULL"):
        assert_has_values(Result("duckdb", ("avg_yearly",), ()))
    assert_has_values(Result("duckdb", ("avg_yearly",), ((8656.388571428572,),)))


def served(engine: str, *values: object) -> Result:
    """One row of ``values`` as ``engine``'s server sends it and the client reads it back."""
    payload = {"columns": [f"c{i}" for i in range(len(values))]}
    payload["rows"] = [[json_value(v) for v in values]]
    return Result.from_json(engine, json.loads(json.dumps(payload)))


def test_decimals_travel_exactly() -> None:
    # As JSON floats they kept 15 to 17 digits and lost their type and scale.
    values = (Decimal("380456.00"), Decimal("12345678901234567890.123456"), Decimal("0E-8"))
    received = served("duckdb", *values).rows[0]
    assert received == values
    assert [str(v) for v in received] == ["380456.00", "12345678901234567890.123456", "0E-8"]
    assert served("sqlite", 1.5, 17, "1995-03-15", None).rows[0] == (1.5, 17, "1995-03-15", None)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        # DuckDB's exact sum against another exact one (the old rule allowed +-0.53 at 5.3e8).
        (Decimal("532348211.65"), Decimal("532348211.66")),
        # Q1's sum_base_price of N|O at SF 0.01 against SQLite's float sum, one cent off: the
        # float sum's own error bound there is 0.007, the old rule allowed +-1.04.
        (Decimal("1041502841.45"), 1041502841.4599979),
        # Q1's sum_charge of A|F (6 places) against SQLite's float sum, one cent off.
        (Decimal("526165934.000839"), 526165934.0108392),
        # A sum of quantities, which SQLite sums as integers.
        (Decimal("380456.00"), 380457),
        (Decimal("17.50"), 17),
    ],
)
def test_a_decimal_off_by_a_cent_is_caught(expected: Decimal, actual: object) -> None:
    with pytest.raises(Mismatch, match="column 1"):
        same(served("duckdb", expected), served("sqlite", actual), ordered=True)


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        # What SQLite answers for Q1 at SF 0.01, against DuckDB: its float sum of
        # DECIMAL(15, 2) prices rounds to the exact sum at 2 places ...
        (Decimal("1041502841.45"), 1041502841.4499979),
        (Decimal("989737518.6346"), 989737518.634604),
        # ... and at 6 places it is within the float sum's error bound (0.007), not within half
        # a unit of the 6th place.
        (Decimal("1029418531.523350"), 1029418531.5233523),
        (Decimal("1029418531.523350"), 1029418531.5233523 + 3e-6),
        # Integers that SQLite keeps as integers (l_quantity is stored as 17, not 17.00).
        (Decimal("380456.00"), 380456),
    ],
)
def test_a_decimal_matches_the_float_or_integer_of_the_same_value(
    expected: Decimal, actual: object
) -> None:
    same(served("duckdb", expected), served("sqlite", actual), ordered=True)


def test_decimals_of_different_scales_compare_at_the_coarser() -> None:
    assert equal(Decimal("1.5"), Decimal("1.50"))
    assert equal(Decimal("0.3333"), Decimal("0.333333"))  # 0.333333 is 0.3333 at 4 places
    assert equal(Decimal("0.6667"), Decimal("0.666667"))
    assert not equal(Decimal("0.6666"), Decimal("0.666667"))
    assert not equal(Decimal("0.3333"), Decimal("0.333400"))
