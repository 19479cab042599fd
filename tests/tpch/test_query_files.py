"""The query files themselves: all 22 present, every variant a real and explained variant."""

from __future__ import annotations

import pytest

from .engines import ENGINES, REFERENCE
from .queries import COUNT, QUERY_DIR, Query, all_queries, has_top_level_order_by


def test_all_22_queries_are_there() -> None:
    names = sorted(p.name for p in QUERY_DIR.glob("q??.sql"))
    assert names == [f"q{n:02d}.sql" for n in range(1, COUNT + 1)]


def test_every_variant_belongs_to_a_known_engine() -> None:
    engines = {e.name for e in ENGINES if e is not REFERENCE}
    for variant in QUERY_DIR.glob("q??.*.sql"):
        assert variant.suffixes[0][1:] in engines, f"{variant.name}: no such engine"


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.name)
def test_a_variant_differs_and_says_why(query: Query) -> None:
    # A copy that does not differ would drift from the spec's text unnoticed; one that does
    # not say why invites "fixing" it back.
    for engine in ENGINES[1:]:
        variant = query.variant_path(engine.name)
        if variant.exists():
            text = variant.read_text()
            assert text != query.path.read_text(), f"{variant.name} is a plain copy"
            comments = [line for line in text.splitlines() if line.startswith("--")]
            assert any("variant:" in line for line in comments), f"{variant.name}: say why"


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
