"""The engines the suite compares, and how each one's query server is started.

The first engine is the reference: its answer to the spec's query text is taken as right,
and every other engine must give the same answer to its own text of the query: the spec's
text, or a variant file where the difference is more than a dialect rewrite, put through the
engine's translation (dialect.py) if it has one (see queries.py). Adding an engine is one more
row here, one server program under servers/, a translation if its dialect needs one, and
variants for the queries no translation rule can carry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .dialect import to_sqlite

SERVER_DIR = Path(__file__).with_name("servers")
# "per-worker" (each xdist worker starts its own servers) or "shared" (one of each for all
# workers of a run). Shared measured faster with 2 workers on 2 cores: two servers loading
# the data, not four, compete with the workers for the CPUs. See docs/benchmarks.md.
SHARING_ENV = "NOXLIB_TPCH_SERVERS"
SHARING_MODES = ("per-worker", "shared")
DEFAULT_SHARING = "shared"


@dataclass(frozen=True)
class Engine:
    """One engine: ``name`` (also the suffix of its query variants), its server ``program``
    in servers/, the program's own ``options``, whether it daemonizes itself, and the
    ``translate`` function that rewrites the spec's dialect into its own (None: runs it as is)."""

    name: str
    program: str
    options: tuple[str, ...] = ()
    daemon: bool = False
    translate: Callable[[str], str] | None = None

    def argv(self, data: Path) -> list[str]:
        """The server's command line; ``{port}``, ``{tmp}``, ``{pid_file}`` are the fixture's."""
        program = str(SERVER_DIR / self.program)
        return [sys.executable, program, "--port", "{port}", "--data", str(data), *self.options]


ENGINES = (
    # One DuckDB thread per query: the parallelism is between queries (xdist workers, each
    # request on its own cursor), and SF 0.01 queries take milliseconds anyway.
    Engine("duckdb", "duckdb_server.py", options=("--threads", "1")),
    Engine(
        "sqlite",
        "sqlite_server.py",
        options=("--pid-file", "{pid_file}", "--workdir", "{tmp}"),
        daemon=True,
        translate=to_sqlite,
    ),
)
REFERENCE = ENGINES[0]


def engine_named(name: str) -> Engine:
    for engine in ENGINES:
        if engine.name == name:
            return engine
    raise KeyError(f"No TPC-H engine {name!r}")


def server_fixture(engine: Engine) -> str:
    """The name of the session fixture that starts ``engine``'s server (see conftest.py)."""
    return f"tpch_{engine.name}"


SERVER_FIXTURES = tuple(server_fixture(e) for e in ENGINES)


def shared_servers(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the workers of a run share one server per engine (``NOXLIB_TPCH_SERVERS``)."""
    mode = env.get(SHARING_ENV, "").strip() or DEFAULT_SHARING
    if mode not in SHARING_MODES:
        raise ValueError(
            f"Invalid {SHARING_ENV}={mode!r}: expected one of {', '.join(SHARING_MODES)}"
        )
    return mode == "shared"


def start_timeout(scale: str) -> float:
    """Seconds a server may take to load the data: SF 0.01 loads in well under a second,
    SF 1 in about a minute on SQLite's single-threaded inserts."""
    return 30.0 + 300.0 * float(scale)
