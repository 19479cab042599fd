"""Servers inside a real ``nox`` run: a daemon that leaves our process tree and drops the run's
environment is still reaped after pytest is killed, because noxlib_servers recorded it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import nox_env, run_nox

PYPROJECT = """
[tool.noxlib]
install = []
default-groups = ["servers"]

[tool.noxlib.groups.servers]
paths = ["tests"]
description = "A daemonizing server, and a test that kills its own pytest"
"""

# A control script: double fork, then the daemon replaces itself by a program with an EMPTY
# environment (no NOXLIB_RUN_ID), so that only the ledger can tell reaping about it.
DAEMON = """
import os, sys

port, pid_file = sys.argv[1], sys.argv[2]
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
body = (
    "import os, socket, sys\\n"
    "listener = socket.create_server(('127.0.0.1', int(sys.argv[1])))\\n"
    "open(sys.argv[2], 'w').write(str(os.getpid()))\\n"
    "while True:\\n"
    "    listener.accept()[0].close()\\n"
)
os.execve(sys.executable, [sys.executable, "-c", body, port, pid_file], {})
"""

TESTS = """
import os, signal, sys
from pathlib import Path
import psutil, pytest

@pytest.fixture(scope="session")
def db(noxlib_servers):
    control = str(Path(__file__).with_name("daemon.py"))
    return noxlib_servers.start(
        "db", [sys.executable, control, "{port}", "{pid_file}"], daemon=True
    )

def test_pytest_dies_with_the_daemon_running(db):
    assert "NOXLIB_RUN_ID" not in psutil.Process(db.pid).environ()  # only the ledger knows it
    Path(os.environ["DAEMON_PID_OUT"]).write_text(str(db.pid))
    os.kill(os.getpid(), signal.SIGKILL)  # no teardown, no session end: only reaping is left
"""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def daemon_pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where the inner test writes the daemon's pid; the daemon is killed (by pid) if left."""
    path = tmp_path / "daemon.pid"
    yield path
    if path.exists() and alive(pid := int(path.read_text())):
        os.kill(pid, signal.SIGKILL)


def test_daemon_server_reaped_after_pytest_is_killed(
    make_project: Callable[..., Path], daemon_pid_file: Path
) -> None:
    project = make_project(PYPROJECT, {"tests/daemon.py": DAEMON, "tests/test_daemon.py": TESTS})
    result = run_nox(project, "-s", "tests", env=nox_env(DAEMON_PID_OUT=str(daemon_pid_file)))
    assert result.returncode != 0, result.stdout
    pid = int(daemon_pid_file.read_text())  # written after the daemon proved env-less
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), result.stdout
