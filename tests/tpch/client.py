"""Send SQL to a query server (servers/queryserver.py) and get a :class:`Result` back."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .compare import Result

# A query of SF 0.01 takes milliseconds; the bound only turns a hung server into a clear error.
QUERY_TIMEOUT = 120.0


class QueryError(Exception):
    """The engine rejected the SQL; the message is the engine's own."""


def run_query(engine: str, url: str, sql: str, timeout: float = QUERY_TIMEOUT) -> Result:
    """Run ``sql`` on the ``engine`` server at ``url`` (``http://127.0.0.1:port``)."""
    request = urllib.request.Request(
        f"{url}/query", data=sql.encode(), headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Result.from_json(engine, json.load(response))
    except urllib.error.HTTPError as exc:
        if exc.code != 400:
            raise
        with exc:
            message = json.load(exc).get("error", "")
        raise QueryError(f"{engine} rejected the query: {message}") from None
