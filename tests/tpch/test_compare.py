"""The comparison can fail: results that differ in value, count, order or type are caught."""

from __future__ import annotations

import pytest

from .compare import (
    Mismatch,
    NothingToCompare,
    Result,
    assert_has_values,
    assert_same_result,
    values_equal,
)

COLUMNS = ("l_returnflag", "sum_qty", "avg_price", "l_shipdate")
ROWS = (("A", 380456, 35785.709306937344, "1992-01-04"), ("N", 8971, 36234.5, None))


def result(engine: str, rows: tuple[tuple[object, ...], ...] = ROWS) -> Result:
    return Result(engine, COLUMNS, rows)


def changed(row: int, column: int, value: object) -> tuple[tuple[object, ...], ...]:
    rows = [list(r) for r in ROWS]
    rows[row][column] = value
    return tuple(tuple(r) for r in rows)


@pytest.mark.parametrize("ordered", [True, False])
def test_equal_results_match(ordered: bool) -> None:
    assert_same_result(result("duckdb"), result("sqlite"), ordered=ordered)


def test_float_noise_is_tolerated() -> None:
    # What SQLite's binary float sums do to an exact decimal sum.
    noisy = changed(0, 2, 35785.709306937344 * (1 + 1e-12))
    assert_same_result(result("duckdb"), result("sqlite", noisy), ordered=True)


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
        assert_same_result(
            result("duckdb"), result("sqlite", changed(0, column, value)), ordered=True
        )
    assert shown in str(caught.value)


def test_a_missing_row_is_caught() -> None:
    with pytest.raises(Mismatch, match="duckdb returned 2 rows, sqlite 1"):
        assert_same_result(result("duckdb"), result("sqlite", ROWS[:1]), ordered=False)


def test_a_missing_column_is_caught() -> None:
    short = Result("sqlite", COLUMNS[:3], tuple(r[:3] for r in ROWS))
    with pytest.raises(Mismatch, match="4 columns"):
        assert_same_result(result("duckdb"), short, ordered=True)


def test_order_counts_only_when_the_query_orders() -> None:
    swapped = result("sqlite", ROWS[::-1])
    assert_same_result(result("duckdb"), swapped, ordered=False)
    with pytest.raises(Mismatch, match="row 1 of the ordered result"):
        assert_same_result(result("duckdb"), swapped, ordered=True)


def test_unordered_rows_compare_as_a_multiset() -> None:
    # Same set of distinct rows, different multiplicities: not the same answer.
    twice_a = (ROWS[0], ROWS[0], ROWS[1])
    twice_n = (ROWS[0], ROWS[1], ROWS[1])
    with pytest.raises(Mismatch, match="as multisets") as caught:
        assert_same_result(result("duckdb", twice_a), result("sqlite", twice_n), ordered=False)
    assert "only in duckdb (1)" in str(caught.value)


def test_types_matter_except_between_numbers() -> None:
    assert values_equal(17, 17.0)
    assert not values_equal("17", 17)
    assert not values_equal(None, 0)
    assert not values_equal(True, 1)


def test_an_answer_of_only_null_checks_nothing() -> None:
    # Q17 with the spec's validation parameters at SF 0.01: one row, NULL.
    with pytest.raises(NothingToCompare, match="only NULL"):
        assert_has_values(Result("duckdb", ("avg_yearly",), ((None,),)))
    with pytest.raises(NothingToCompare, match="only NULL"):
        assert_has_values(Result("duckdb", ("avg_yearly",), ()))
    assert_has_values(Result("duckdb", ("avg_yearly",), ((8656.388571428572,),)))
