"""The SQLite translation: each rule rewrites what it should, into SQL that SQLite evaluates
to what the spec's expression means."""

from __future__ import annotations

import datetime
import sqlite3

import pytest

from .dialect import SQLITE_RULES, to_sqlite
from .queries import Query, all_queries

# (rule, the spec's text, what SQLite gets): every rule has cases here, in the forms the
# queries use and in upper case.
REWRITES = [
    ("date_arithmetic", "date '1998-12-01' - interval '90' day", "date('1998-12-01', '-90 days')"),
    (
        "date_arithmetic",
        "date '1993-07-01' + interval '3' month",
        "date('1993-07-01', '+3 months')",
    ),
    ("date_arithmetic", "date '1994-01-01' + interval '1' year", "date('1994-01-01', '+1 years')"),
    ("date_arithmetic", "DATE '1995-09-01'+INTERVAL '1' MONTH", "date('1995-09-01', '+1 MONTHs')"),
    ("date_literal", "o_orderdate < date '1995-03-15'", "o_orderdate < '1995-03-15'"),
    (
        "date_literal",
        "l_shipdate between date '1995-01-01' and DATE '1996-12-31'",
        "l_shipdate between '1995-01-01' and '1996-12-31'",
    ),
    (
        "extract_year",
        "extract(year from l_shipdate)",
        "cast(strftime('%Y', l_shipdate) as integer)",
    ),
    (
        "extract_year",
        "EXTRACT( YEAR FROM o.o_orderdate )",
        "cast(strftime('%Y', o.o_orderdate) as integer)",
    ),
    ("substring", "substring(c_phone from 1 for 2)", "substr(c_phone, 1, 2)"),
    ("substring", "SUBSTRING(c.c_phone FROM 4 FOR 3)", "substr(c.c_phone, 4, 3)"),
]


@pytest.mark.parametrize(("rule", "spec", "sqlite"), REWRITES, ids=[r[0] for r in REWRITES])
def test_rule_rewrites(rule: str, spec: str, sqlite: str) -> None:
    assert to_sqlite(spec) == sqlite, rule


def test_every_rule_has_cases() -> None:
    assert {rule for rule, _, _ in REWRITES} == {rule.name for rule in SQLITE_RULES}


def sqlite_value(expression: str, **columns: str) -> object:
    """``expression`` evaluated by SQLite, with ``columns`` as the one row it reads from."""
    row = ", ".join(f"? as {name}" for name in columns) or "1"
    sql = f"select {expression} from (select {row})"
    return sqlite3.connect(":memory:").execute(sql, tuple(columns.values())).fetchone()[0]


def test_date_arithmetic_computes_the_date() -> None:
    start = datetime.date(1998, 12, 1)
    assert sqlite_value(to_sqlite("date '1998-12-01' - interval '90' day")) == str(
        start - datetime.timedelta(days=90)
    )
    assert sqlite_value(to_sqlite("date '1993-07-01' + interval '3' month")) == "1993-10-01"
    assert sqlite_value(to_sqlite("date '1994-01-01' + interval '1' year")) == "1995-01-01"
    assert sqlite_value(to_sqlite("DATE '1995-09-01' + INTERVAL '1' MONTH")) == "1995-10-01"


def test_a_date_literal_compares_as_the_iso_text_sqlite_stores() -> None:
    con = sqlite3.connect(":memory:")
    con.execute("create table t (d date)")
    con.executemany("insert into t values (?)", [("1995-03-14",), ("1995-03-15",), ("1996-01-02",)])
    sql = to_sqlite("select d from t where d < date '1995-03-15' order by d")
    assert con.execute(sql).fetchall() == [("1995-03-14",)]


def test_extract_year_is_an_integer() -> None:
    # An integer, as EXTRACT gives: the text '1995' would not equal DuckDB's 1995.
    value = sqlite_value(to_sqlite("extract(year from d)"), d="1995-06-17")
    assert value == 1995
    assert type(value) is int


def test_substring_counts_from_one() -> None:
    assert sqlite_value(to_sqlite("substring(p from 1 for 2)"), p="13-750-942-6364") == "13"


def test_other_text_is_left_alone() -> None:
    sql = "select 'date', update_date, substr(c_phone, 1, 2) from t where x between 0.05 and 0.07"
    assert to_sqlite(sql) == sql


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
def test_the_translation_of_a_query_is_final(query: Query) -> None:
    # Nothing in the translated text is left for a rule: a variant may be written in either
    # dialect, and no rule's output is the input of another.
    once = to_sqlite(query.path.read_text())
    assert to_sqlite(once) == once
    for spec_only in ("interval", "extract(", "substring(", "date '"):
        assert spec_only not in once.lower()
