"""SQLite behind the query protocol of queryserver.py, as a server that daemonizes itself.

Like the start script of a reference database server, the program double-forks: the process
that was started exits at once with status 0, the grandchild (no controlling terminal, its own
session, reparented to init) writes its pid to ``--pid-file``, loads the data and serves. The
fixture knows it only through that pid file, which is exactly what reaping must cope with.

SQLite differs from the TPC-H reference (DuckDB) in dialect, not data: the loaded values are
the same CSV files. ``case_sensitive_like`` is switched on because SQL's LIKE is case
sensitive and SQLite's default is not; without it Q13 and Q16 would differ for no reason of
the query.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from queryserver import TABLES, Execute, common_arguments, log, schema_statements, serve


def daemonize(pid_file: Path) -> None:
    """Double fork; only the grandchild returns, after writing its pid to ``pid_file``."""
    if os.fork() > 0:
        os._exit(0)  # the started process: "server started", as a start script says
    os.setsid()  # leave the starter's session: no terminal, no process-group signals
    if os.fork() > 0:
        os._exit(0)  # the session leader exits so the daemon can never regain a terminal
    os.chdir("/")
    os.umask(0o022)
    # stdin is closed as daemons do; stdout and stderr stay on the log file the fixture opened.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(pid_file)  # atomic: a reader never sees an empty pid file


# Foreign-key indexes (the spec allows them). SQLite runs correlated subqueries as nested
# loops: without these, Q17, Q20 and Q22 scan lineitem or orders once per outer row, which at
# SF 0.1 takes minutes where DuckDB's hash joins take milliseconds.
INDEXES = (
    "create index lineitem_part_supp on lineitem (l_partkey, l_suppkey)",
    "create index orders_customer on orders (o_custkey)",
)


def load(data: Path, database: Path) -> None:
    """Create ``database`` with every table loaded from ``data``/<table>.csv, then index it."""
    with sqlite3.connect(database) as con:
        # A throwaway copy of the CSV files: no journal and no fsync (a quarter of the load).
        con.execute("pragma journal_mode = off")
        con.execute("pragma synchronous = off")
        for statement in schema_statements():
            con.execute(statement)
        for table in TABLES:
            with (data / f"{table}.csv").open(newline="") as f:
                rows = csv.reader(f)
                width = len(next(rows))  # the header row
                marks = ", ".join("?" * width)
                con.executemany(f"insert into {table} values ({marks})", rows)
        # No ANALYZE: with its statistics SQLite picks worse join orders for Q5 and Q14
        # (13x and 8x slower at SF 0.1) and gains little elsewhere.
        for statement in INDEXES:
            con.execute(statement)
    con.close()


def executor(database: Path) -> Execute:
    uri = f"{database.as_uri()}?mode=ro"

    def execute(sql: str) -> tuple[list[str], list[Sequence[Any]]]:
        # A read-only connection per request: requests of different workers (shared server)
        # run in parallel, since sqlite3 releases the GIL while a statement steps.
        con = sqlite3.connect(uri, uri=True)
        try:
            con.execute("pragma case_sensitive_like = on")
            cursor = con.execute(sql)
            return [d[0] for d in cursor.description or ()], cursor.fetchall()
        finally:
            con.close()

    return execute


def main() -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="folder for the database")
    args = parser.parse_args()
    pid_file, workdir, data = args.pid_file.resolve(), args.workdir.resolve(), args.data.resolve()
    daemonize(pid_file)
    log(f"sqlite {sqlite3.sqlite_version}: daemon in session {os.getsid(0)}, loading {data}")
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "tpch.sqlite"
    database.unlink(missing_ok=True)  # a restart starts from the CSV files, never a stale copy
    load(data, database)
    log("data loaded")

    def cleanup() -> None:
        pid_file.unlink(missing_ok=True)
        database.unlink(missing_ok=True)

    serve("sqlite", args.port, executor(database), on_exit=cleanup)


if __name__ == "__main__":
    main()
