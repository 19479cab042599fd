"""Mechanical dialect translation: the spec's SQL text as another engine can run it.

An engine whose dialect lacks some of the spec's syntax gets a translation function in its
row of ``engines.ENGINES``; the suite runs every query text through it (the spec's text, or
the engine's variant file where one is needed, see queries.py). A rule here is a token-level
rewrite that asks exactly the same question. A difference that is not (the answer changes, or
the statement must be restructured) stays a variant file with a header that says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DATE = r"date\s+'(\d{4}-\d{2}-\d{2})'"


@dataclass(frozen=True)
class Rule:
    """One rewrite: every match of ``pattern`` (case-insensitive) becomes ``replacement``."""

    name: str
    pattern: re.Pattern[str]
    replacement: str

    def apply(self, sql: str) -> str:
        return self.pattern.sub(self.replacement, sql)


def _rule(name: str, pattern: str, replacement: str) -> Rule:
    return Rule(name, re.compile(pattern, re.IGNORECASE), replacement)


# In order: date_arithmetic must run before date_literal takes its DATE literal away.
SQLITE_RULES = (
    # SQLite has no INTERVAL type and no date arithmetic: date('1994-01-01', '+3 months')
    # computes the date and returns ISO text. The spec only adds whole days, months, years.
    _rule(
        "date_arithmetic",
        _DATE + r"\s*([+-])\s*interval\s+'(\d+)'\s+(day|month|year)s?\b",
        r"date('\1', '\2\3 \4s')",
    ),
    # SQLite has no DATE type or DATE '...' literal: dates are stored as ISO text, which
    # compares and orders as dates do, so the literal is its plain string.
    _rule("date_literal", _DATE, r"'\1'"),
    # SQLite has no EXTRACT: strftime('%Y', d) is the year as text, cast to compare and sort
    # as the integer EXTRACT returns.
    _rule(
        "extract_year",
        r"\bextract\s*\(\s*year\s+from\s+([\w.]+)\s*\)",
        r"cast(strftime('%Y', \1) as integer)",
    ),
    # SQLite has no SUBSTRING(s FROM i FOR n), only the function form substr(s, i, n).
    _rule(
        "substring",
        r"\bsubstring\s*\(\s*([\w.]+)\s+from\s+(\d+)\s+for\s+(\d+)\s*\)",
        r"substr(\1, \2, \3)",
    ),
)


def translate(sql: str, rules: tuple[Rule, ...]) -> str:
    for rule in rules:
        sql = rule.apply(sql)
    return sql


def to_sqlite(sql: str) -> str:
    """``sql`` in the spec's dialect (DuckDB runs it as is), rewritten for SQLite."""
    return translate(sql, SQLITE_RULES)
