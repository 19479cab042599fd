"""The TPC-H suite leaves no DuckDB or SQLite server running, whether its run ends normally or
pytest is SIGKILLed half-way through the queries.

A copy of tests/tpch runs in a real ``nox -s ci -- tpch`` (two xdist workers) in a tmp
project. A conftest added to the copy writes, before every test, the pid of each server the
test uses (with its creation time, session and parent, to prove the servers really escaped:
DuckDB in a session of its own, SQLite a daemon reparented away from pytest). With
TPCH_KILL_AT it then SIGKILLs all of pytest (the xdist controller and every worker) at that
query: no fixture teardown runs, not even a surviving worker's, so only noxlib's reaping is
left. Both ways of running the servers are killed: shared by the workers, and per worker.
Servers are checked by pid and creation time, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import nox_env, run_nox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "tpch"
# Reaping of a SIGKILLed run takes well under a second; the bound only ends a failing wait.
GONE_WITHIN = 10.0

PYPROJECT = """
[tool.noxlib]
install = []
test-requirements = ["duckdb", "tpchgen-cli"]
default-groups = ["tpch"]

[tool.noxlib.coverage]
enabled = false

[tool.noxlib.groups.tpch]
paths = ["tests/tpch"]
description = "A copy of noxlib's TPC-H suite"
"""

RECORDER = '''
"""Notes the servers each test uses; at the query named by TPCH_KILL_AT, SIGKILLs pytest."""
import os, signal
import psutil, pytest

def _record(item):
    lines = []
    for name, value in item.funcargs.items():
        pid = getattr(value, "pid", None)
        if name.startswith("tpch_") and isinstance(pid, int):
            proc = psutil.Process(pid)
            facts = (value.name, pid, proc.create_time(), os.getsid(pid), proc.ppid(), os.getpid())
            lines.append(" ".join(map(str, facts)) + "\\n")
    with open(os.environ["TPCH_PIDS_OUT"], "a") as out:
        out.writelines(lines)

def _pytest_processes():
    """This process, and under xdist the controller and the other workers: all of pytest,
    and none of the servers (those are children of workers, not of the controller)."""
    controller = psutil.Process(os.getppid())
    # A shard process has xdist's worker variable too, but its parent is nox, not pytest.
    if "pytest" not in " ".join(controller.cmdline()):
        return [psutil.Process()]
    # Its children are the workers (PYTEST_XDIST_WORKER is set only inside a worker, so it is
    # not in their /proc environ); the servers are the workers' children.
    return [controller, *controller.children()]

@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item):
    _record(item)
    if item.name == f"test_query[{os.environ.get('TPCH_KILL_AT')}]":
        # No worker may live on to stop the servers in its teardown: only reaping is left.
        me = psutil.Process()
        for proc in sorted(_pytest_processes(), key=lambda p: p.pid == me.pid):
            proc.send_signal(signal.SIGKILL)
'''


@dataclass(frozen=True)
class Seen:
    """A server as a test saw it: its name, pid, creation time, session id, parent pid, and
    the pid of the pytest process that used it."""

    name: str
    pid: int
    created: float
    sid: int
    ppid: int
    user: int

    @classmethod
    def parse(cls, line: str) -> Seen:
        name, pid, created, sid, ppid, user = line.split()
        return cls(name, int(pid), float(created), int(sid), int(ppid), int(user))

    def alive(self) -> bool:
        """Still running and still the same process (a reused pid is someone else)."""
        try:
            proc = psutil.Process(self.pid)
            same = abs(proc.create_time() - self.created) < 0.01
            return same and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


def read_seen(path: Path) -> list[Seen]:
    if not path.exists():
        return []
    unique = {Seen.parse(line) for line in path.read_text().splitlines() if line.strip()}
    return sorted(unique, key=lambda s: (s.name, s.pid))


def wait_all_gone(servers: list[Seen]) -> list[Seen]:
    deadline = time.monotonic() + GONE_WITHIN
    alive = servers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [s for s in alive if s.alive()]
    return alive


@pytest.fixture(scope="module")
def tpch_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("tpch-kill") / "proj"
    shutil.copytree(SUITE, project / "tests" / "tpch", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "tests" / "conftest.py").write_text(RECORDER)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "noxfile.py").write_text("import noxlib\nnoxlib.register_sessions()\n")
    return project


@pytest.fixture
def pids_out(tmp_path: Path) -> Iterator[Path]:
    """Where the servers are noted; any left running when the test fails is killed by pid."""
    path = tmp_path / "servers.txt"
    yield path
    for seen in read_seen(path):
        if seen.alive():
            os.kill(seen.pid, signal.SIGKILL)


def run_suite(project: Path, pids_out: Path, **extra: str) -> tuple[int, str]:
    # The data cache of this checkout is shared: it is locked, and generating it again in
    # every tmp project would only cost time.
    cache = str(ROOT / ".noxlib" / "cache" / "tpch")
    env = nox_env(TPCH_PIDS_OUT=str(pids_out), NOXLIB_TPCH_CACHE=cache, PYTEST_WORKERS="2")
    env.update(extra)
    reuse = ["-R"] if (project / ".nox").exists() else []  # the second run skips the install
    done = run_nox(project, *reuse, "-s", "ci", "--", "tpch", env=env)
    return done.returncode, done.stdout


def assert_escaped(servers: list[Seen]) -> None:
    """The servers really are the hard kind: DuckDB left pytest's session, SQLite daemonized."""
    by_name = {s.name: s for s in servers}
    assert set(by_name) == {"tpch-duckdb", "tpch-sqlite"}, servers
    duckdb, sqlite = by_name["tpch-duckdb"], by_name["tpch-sqlite"]
    assert duckdb.sid == duckdb.pid, "DuckDB's server did not start a session of its own"
    assert sqlite.ppid != sqlite.user, "SQLite's server is still pytest's child: no daemon"


@pytest.mark.parametrize(
    ("sharing", "kill_at", "ends", "engine"),
    [
        ("shared", None, "normally", "xdist"),
        ("shared", "q12", "with pytest SIGKILLed at q12", "xdist"),
        ("per-worker", "q12", "with pytest SIGKILLed at q12", "xdist"),
        ("shared", "q12", "with a shard's pytest SIGKILLed at q12", "shards"),
    ],
    ids=[
        "normal-end",
        "pytest-killed-shared-servers",
        "pytest-killed-servers-per-worker",
        "shard-killed-shared-servers",
    ],
)
def test_no_server_outlives_the_run(
    tpch_project: Path,
    pids_out: Path,
    *,
    sharing: str,
    kill_at: str | None,
    ends: str,
    engine: str,
) -> None:
    extra = {"NOXLIB_TPCH_SERVERS": sharing, "NOXLIB_ENGINE": engine}
    if kill_at:
        extra["TPCH_KILL_AT"] = kill_at
    code, output = run_suite(tpch_project, pids_out, **extra)
    assert (code == 0) is (kill_at is None), output
    servers = read_seen(pids_out)
    assert servers, f"no test noted a server:\n{output}"
    for worker in {s.user for s in servers}:
        assert_escaped([s for s in servers if s.user == worker])
    left = wait_all_gone(servers)
    assert not left, f"servers still running {GONE_WITHIN:g} s after a run that ended {ends}: " + (
        ", ".join(f"{s.name} pid {s.pid}" for s in left) + f"\n{output}"
    )
