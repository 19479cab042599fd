"""The query files themselves: all 22 present, every variant a real and explained variant,
and every text SQLite runs one that SQLite can prepare."""

from __future__ import annotations

import sqlite3

import pytest

from .dialect import to_sqlite
from .engines import ENGINES, REFERENCE, Engine
from .queries import COUNT, QUERY_DIR, Query, all_queries, has_top_level_order_by
from .servers.queryserver import schema_statements


def test_all_22_queries_are_there() -> None:
    names = sorted(p.name for p in QUERY_DIR.glob("q??.sql"))
    assert names == [f"q{n:02d}.sql" for n in range(1, COUNT + 1)]


def test_every_variant_belongs_to_a_known_engine() -> None:
    engines = {e.name for e in ENGINES if e is not REFERENCE}
    for variant in QUERY_DIR.glob("q??.*.sql"):
        assert variant.suffixes[0][1:] in engines, f"{variant.name}: no such engine"


def statement(sql: str) -> str:
    """``sql`` without its comment lines and with its whitespace collapsed."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return " ".join(" ".join(lines).split())


def as_is(sql: str) -> str:
    return sql


VARIANTS = [
    (query, engine)
    for query in all_queries()
    for engine in ENGINES[1:]
    if query.variant_path(engine.name).exists()
]


@pytest.mark.parametrize(
    ("query", "engine"), VARIANTS, ids=[f"{q.name}-{e.name}" for q, e in VARIANTS]
)
def test_a_variant_differs_from_the_translation_and_says_why(query: Query, engine: Engine) -> None:
    # A variant that asks what the translated spec's text asks would drift from the spec
    # unnoticed (and is what the translation is there to replace); one that does not say why
    # invites "fixing" it back.
    variant = query.variant_path(engine.name)
    text = variant.read_text()
    translate = engine.translate or as_is
    translated_spec = statement(translate(query.path.read_text()))
    # Both the spec's dialect and a hand translation count: the translation leaves its own
    # output as it is (test_dialect.py).
    assert statement(translate(text)) != translated_spec, (
        f"{variant.name} is the spec's text up to {translate.__name__}: delete it"
    )
    comments = [line for line in text.splitlines() if line.startswith("--")]
    assert any("variant:" in line for line in comments), f"{variant.name}: say why"


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
def test_sqlite_prepares_its_text(query: Query) -> None:
    # Without the servers: every text SQLite runs (translated, or its variant) is one that
    # SQLite parses and plans against the schema, so a gap in the translation shows here.
    con = sqlite3.connect(":memory:")
    for create in schema_statements():
        con.execute(create)
    con.execute(f"explain {query.sql('sqlite')}")


def test_q13_needs_its_variant() -> None:
    con = sqlite3.connect(":memory:")
    for create in schema_statements():
        con.execute(create)
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        con.execute(f"explain {to_sqlite(Query('q13').path.read_text())}")


@pytest.mark.parametrize(
    ("sql", "ordered"),
    [
        ("select a from t order by a", True),
        ("select a from t\nORDER  BY a", True),
        ("select (select b from u order by b limit 1) from t", False),
        ("select 'order by' from t -- order by a", False),
        ("with x as (select a from t order by a) select a from x", False),
    ],
)
def test_only_an_outermost_order_by_orders(sql: str, ordered: bool) -> None:
    assert has_top_level_order_by(sql) is ordered
