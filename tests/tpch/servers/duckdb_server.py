"""DuckDB behind the query protocol of queryserver.py, as a server that detaches itself.

It calls ``os.setsid()`` first thing, the way a JVM database server or a ``nohup``-style
launcher leaves its parent's session and process group: a Ctrl-C or a process-group kill of
pytest no longer reaches it, so only noxlib's reaping (by pid and run identity) can end it.
That is the point: the suite proves the reaping, not the server's good manners.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
from queryserver import TABLES, Execute, common_arguments, log, schema_statements, serve


def load(data: Path, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory database with every table loaded from ``data``/<table>.csv."""
    con = duckdb.connect(":memory:", config={"threads": threads})
    for statement in schema_statements():
        con.execute(statement)
    for table in TABLES:
        csv = str(data / f"{table}.csv")
        # Parsing by the table's own column types (not sniffed ones) keeps DECIMAL and DATE.
        con.execute(f"copy {table} from '{csv}' (header true, delimiter ',', quote '\"')")
    return con


def executor(con: duckdb.DuckDBPyConnection) -> Execute:
    def execute(sql: str) -> tuple[list[str], list[Sequence[Any]]]:
        # A cursor per request: one DuckDB connection must not serve two threads at once,
        # while cursors of it share the loaded data and may run concurrently.
        with con.cursor() as cursor:
            result = cursor.execute(sql)
            return [d[0] for d in result.description or ()], result.fetchall()

    return execute


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="DuckDB worker threads")
    args = parser.parse_args()
    os.setsid()
    log(f"duckdb {duckdb.__version__}: new session {os.getsid(0)}, loading {args.data}")
    con = load(args.data, args.threads)
    log("data loaded")
    serve("duckdb", args.port, executor(con))


if __name__ == "__main__":
    main()
