"""The HTTP side shared by every engine's query server: stdlib only, so a server program needs
nothing but its engine's driver.

Protocol: ``GET /health`` answers 200 once the data is loaded; ``POST /query`` with SQL as the
body answers ``{"columns": [...], "rows": [[...], ...], "seconds": s}``, or 400 with
``{"error": "..."}`` when the engine rejects the SQL. Values are made JSON-safe in a way both
engines share, so results compare value by value: dates as ISO text, and DECIMAL values
exactly, as their text in an object of their own (``{"decimal": "380456.00"}``, scale
included), which :func:`python_value` turns back into the same ``Decimal``. As JSON floats
they would lose digits beyond the 15th to 17th and the type that makes them compare exactly.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("schema.sql")
TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")

# Runs one SQL text and returns (column names, rows); raises the engine's own error on bad SQL.
Execute = Callable[[str], tuple[list[str], list[Sequence[Any]]]]


def schema_statements() -> list[str]:
    """The ``create table`` statements of schema.sql, comments removed."""
    lines = [ln for ln in SCHEMA.read_text().splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


DECIMAL_KEY = "decimal"


def json_value(value: Any) -> Any:
    """One result value in the shape both engines share on the wire."""
    if isinstance(value, decimal.Decimal):
        return {DECIMAL_KEY: str(value)}  # str keeps every digit and the scale: 17.00
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def python_value(value: Any) -> Any:
    """One value as it came off the wire, back in Python: the inverse of :func:`json_value`
    for decimals (dates stay ISO text, which both engines share)."""
    if isinstance(value, dict) and value.keys() == {DECIMAL_KEY}:
        return decimal.Decimal(value[DECIMAL_KEY])
    return value


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--data", type=Path, required=True, help="folder of <table>.csv files")
    return parser


def log(message: str) -> None:
    # stderr is the server's log file (the fixture redirects it); flush so a crash keeps it.
    print(f"[{os.getpid()}] {message}", file=sys.stderr, flush=True)


def _handler_class(engine: str, execute: Execute) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                self._send(404, {"error": f"no such path {self.path}"})
                return
            self._send(200, {"engine": engine, "pid": os.getpid()})

        def do_POST(self) -> None:
            if self.path != "/query":
                self._send(404, {"error": f"no such path {self.path}"})
                return
            sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            started = time.perf_counter()
            try:
                columns, rows = execute(sql)
            except Exception as exc:  # the engine's error goes back to the caller verbatim
                self._send(400, {"error": f"{type(exc).__name__}: {exc}"})
                return
            payload = {
                "columns": columns,
                "rows": [[json_value(v) for v in row] for row in rows],
                "seconds": round(time.perf_counter() - started, 6),
            }
            self._send(200, payload)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log(format % args)

    return Handler


def serve(
    engine: str, port: int, execute: Execute, on_exit: Callable[[], None] = lambda: None
) -> None:
    """Answer queries on 127.0.0.1:``port`` until SIGTERM or SIGINT, then call ``on_exit``."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(engine, execute))
    server.daemon_threads = True  # an in-flight query must not keep a stopping server alive
    log(f"{engine} server listening on 127.0.0.1:{port}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        on_exit()
        log(f"{engine} server stopped")
