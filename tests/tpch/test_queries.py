"""Each TPC-H query, run on every engine, answers the same as on the reference engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from .client import run_query
from .compare import (
    Mismatch,
    NothingToCompare,
    Result,
    assert_has_values,
    assert_same_result,
    float_tolerance,
)
from .datagen import SCALE_ENV, lineitem_rows
from .dialect import to_sqlite
from .engines import ENGINES, REFERENCE, SERVER_FIXTURES
from .queries import Query, all_queries

# Every server fixture among each test's fixtures: the plugin restarts a dead server before
# the next test that uses it, and it learns which tests use which from these.
pytestmark = pytest.mark.usefixtures(*SERVER_FIXTURES)


def answer(query: Query, engine: str, servers: dict[str, Any]) -> Result:
    return run_query(engine, servers[engine].url, query.sql(engine))


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
def test_query(query: Query, tpch_servers: dict[str, Any], tpch_scale: str) -> None:
    rel_tol = float_tolerance(lineitem_rows(tpch_scale))
    expected = answer(query, REFERENCE.name, tpch_servers)
    for engine in ENGINES[1:]:
        actual = answer(query, engine.name, tpch_servers)
        try:
            assert_same_result(expected, actual, ordered=query.ordered, rel_tol=rel_tol)
        except Mismatch as exc:
            raise Mismatch(
                f"{query.name}: {engine.name} ({query.describe(engine.name)}) answers "
                f"differently from {REFERENCE.name} ({query.path.name}): {exc}"
            ) from None
    try:
        assert_has_values(expected)
    except NothingToCompare as exc:
        # The engines agree, but on nothing: no row qualifies at this scale factor. A match
        # that checks nothing is not a pass (nor a skip, which CI would not notice): the
        # query's substitution parameters must select rows (see queries/q17.sql).
        raise NothingToCompare(
            f"{query.name} ({query.path.name}) at scale factor {tpch_scale} ({SCALE_ENV}): {exc}"
        ) from None


def test_q17_has_data(tpch_servers: dict[str, Any], tpch_scale: str) -> None:
    """Q17 answers a number on every engine: with the spec's validation parameters (Brand#23,
    MED BOX) it answers only NULL at SF 0.01, the default, so queries/q17.sql uses SM PACK."""
    q17 = Query("q17")
    for engine in ENGINES:
        result = answer(q17, engine.name, tpch_servers)
        assert result.columns == ("avg_yearly",), engine.name
        [(avg_yearly,)] = result.rows
        assert isinstance(avg_yearly, float), f"{engine.name} answers {avg_yearly!r}"
        assert avg_yearly > 0, f"{engine.name} answers {avg_yearly!r}"


def test_decimals_arrive_exactly(tpch_servers: dict[str, Any]) -> None:
    """DuckDB's DECIMAL results reach the comparison as Decimals of their column's scale (so
    they compare exactly), where SQLite answers integers and floats."""
    q01 = Query("q01")
    sums = answer(q01, REFERENCE.name, tpch_servers).rows[0][2:6]  # sum_qty ... sum_charge
    assert all(isinstance(v, Decimal) for v in sums), sums
    assert [-v.as_tuple().exponent for v in sums] == [2, 2, 4, 6], sums
    sqlite = answer(q01, "sqlite", tpch_servers).rows[0][2:6]
    assert [type(v) for v in sqlite] == [int, float, float, float], sqlite


def test_wrong_variant_is_caught(tpch_servers: dict[str, Any], tpch_scale: str) -> None:
    """The comparison sees a dialect difference that changes the answer: without its variant,
    SQLite runs the translated spec's text and evaluates ``0.06 + 0.01`` in binary floating
    point, which leaves out every 0.07 discount."""
    q06 = Query("q06")
    right = q06.sql("sqlite")
    wrong = to_sqlite(q06.path.read_text())
    assert "between 0.06 - 0.01 and 0.06 + 0.01" in wrong
    assert "between 0.06 - 0.01" not in right, "q06.sqlite.sql no longer writes the bounds out"
    expected = answer(q06, REFERENCE.name, tpch_servers)
    actual = run_query("sqlite", tpch_servers["sqlite"].url, wrong)
    with pytest.raises(Mismatch, match="differ"):
        assert_same_result(
            expected,
            actual,
            ordered=q06.ordered,
            rel_tol=float_tolerance(lineitem_rows(tpch_scale)),
        )


def test_a_cent_is_caught_on_the_largest_sums(
    tpch_servers: dict[str, Any], tpch_scale: str
) -> None:
    """One cent more on each of Q1's sums of prices, the largest decimals of the suite (5e8 to
    1e9 at SF 0.01, where the old rule of 1e-9 of every number let up to a dollar through),
    is a different answer: SQLite's float sums are held to the cent."""
    q01 = Query("q01")
    spec = "sum(l_extendedprice) as sum_base_price"
    assert spec in q01.sql("sqlite")
    wrong = q01.sql("sqlite").replace(spec, "sum(l_extendedprice) + 0.01 as sum_base_price")
    expected = answer(q01, REFERENCE.name, tpch_servers)
    actual = run_query("sqlite", tpch_servers["sqlite"].url, wrong)
    with pytest.raises(Mismatch, match=r"column 4 \(sum_base_price\)"):
        assert_same_result(
            expected,
            actual,
            ordered=q01.ordered,
            rel_tol=float_tolerance(lineitem_rows(tpch_scale)),
        )
