"""The 22 TPC-H queries as files, and which text each engine runs.

``queries/qNN.sql`` is the spec's text with the validation substitution parameters, as the
reference engine (DuckDB) runs it. Another engine runs it through its translation
(dialect.py), which rewrites what its dialect spells differently. Where the difference is
more than such a rewrite, the engine keeps a variant next to it, ``queries/qNN.<engine>.sql``,
written in the spec's dialect (it is translated too), whose header says what differs and why.
A variant must answer the same question: the comparison of results is what checks that it
does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .engines import engine_named

QUERY_DIR = Path(__file__).with_name("queries")
COUNT = 22


@dataclass(frozen=True)
class Query:
    """One TPC-H query: ``name`` is q01..q22."""

    name: str

    @property
    def path(self) -> Path:
        return QUERY_DIR / f"{self.name}.sql"

    def variant_path(self, engine: str) -> Path:
        return QUERY_DIR / f"{self.name}.{engine}.sql"

    def source(self, engine: str) -> Path:
        """The file ``engine``'s text comes from: its own variant if it has one, else the spec's."""
        variant = self.variant_path(engine)
        return variant if variant.exists() else self.path

    def sql(self, engine: str) -> str:
        """The text ``engine`` runs: its source file, put through its translation if any."""
        text = self.source(engine).read_text()
        translate = engine_named(engine).translate
        return translate(text) if translate else text

    def describe(self, engine: str) -> str:
        """Where ``engine``'s text comes from, for messages: ``q06.sqlite.sql, to_sqlite``."""
        translate = engine_named(engine).translate
        name = self.source(engine).name
        return f"{name}, {translate.__name__}" if translate else name

    @property
    def ordered(self) -> bool:
        """Whether the outermost select has ORDER BY, making row order part of the answer."""
        return has_top_level_order_by(self.path.read_text())


def all_queries() -> list[Query]:
    return [Query(f"q{n:02d}") for n in range(1, COUNT + 1)]


_TOKENS = re.compile(r"--[^\n]*|'(?:[^']|'')*'|\(|\)|\border\s+by\b", re.IGNORECASE)


def has_top_level_order_by(sql: str) -> bool:
    """True if ``sql`` has ORDER BY outside all parentheses, comments and string literals.

    An ORDER BY inside a subquery orders nothing the caller sees, so it does not count.
    """
    depth = 0
    for match in _TOKENS.finditer(sql):
        token = match.group()
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token[0] not in "-'" and depth == 0:
            return True
    return False
