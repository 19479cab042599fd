"""noxlib.servers.ServerManager with real processes, without pytest's plugin in between:
readiness kinds, a lost port race, restart, stop, daemons through a pid file, the ledger."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from noxlib.reaping import ledger
from noxlib.servers import Server, ServerError, ServerManager, ServerStartError
from noxlib.servers.ports import free_port

LISTEN = textwrap.dedent(
    """
    import socket, sys
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        listener.accept()[0].close()
    """
)

# A control script in the manner of pg_ctl: forks the daemon, which leaves the session and
# forks again, writes its pid file and serves; the script itself exits 0 at once.
DAEMON = textwrap.dedent(
    """
    import os, socket, sys
    port, pid_file = int(sys.argv[1]), sys.argv[2]
    if os.fork():
        sys.exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    listener = socket.create_server(("127.0.0.1", port))
    with open(pid_file, "w") as out:
        out.write(f"{os.getpid()}\\n")
    while True:
        listener.accept()[0].close()
    """
)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServerManager]:
    manager = ServerManager(tmp_path / "servers")
    yield manager
    assert manager.stop_all() == []


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_http_readiness_and_the_url(manager: ServerManager) -> None:
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
    server = manager.start("web", argv, ready="http:/", timeout=30)
    assert server.url == f"http://127.0.0.1:{server.port}"
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=5):
        pass


def test_http_readiness_waits_for_a_success_status(manager: ServerManager) -> None:
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
    with pytest.raises(ServerStartError, match=r"not ready after 1 s .*answered HTTP 404"):
        manager.start("web", argv, ready="http:/no-such-page", timeout=1)


def test_callable_readiness_gets_the_server(manager: ServerManager, tmp_path: Path) -> None:
    seen: list[Server] = []

    def ready(server: Server) -> bool:
        seen.append(server)
        return len(seen) >= 3

    argv = [sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
    server = manager.start("cb", argv, ready=ready)
    assert seen == [server] * 3


def test_unknown_readiness_is_an_error_naming_the_choices(
    manager: ServerManager, tmp_path: Path
) -> None:
    argv = [sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
    with pytest.raises(ServerError, match=r"Unknown ready='udp'.*'tcp', 'http:/path'"):
        manager.start("bad", argv, ready="udp")


def test_a_port_lost_to_another_process_is_retried_with_another(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as thief:
        taken = thief.getsockname()[1]
        ports = iter([taken, free_port()])
        manager = ServerManager(tmp_path / "servers", pick_port=lambda: next(ports))
        argv = [sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
        try:
            server = manager.start("racer", argv)
            assert server.port != taken
            assert server.alive()
            assert "Address already in use" in server.log_path.read_text()
        finally:
            assert manager.stop_all() == []


def test_restart_gives_a_new_process_on_the_same_port(
    manager: ServerManager, tmp_path: Path
) -> None:
    argv = [sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
    server = manager.start("again", argv)
    first_pid, port = server.pid, server.port
    assert first_pid is not None
    server.restart()
    assert (server.port, server.alive()) == (port, True)
    assert server.pid != first_pid
    assert gone(first_pid)


def test_ensure_alive_restarts_a_dead_server_and_says_how_it_died(
    manager: ServerManager, tmp_path: Path
) -> None:
    argv = [sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
    server = manager.start("fragile", argv)
    assert server.ensure_alive() is None
    os.kill(server.pid or 0, signal.SIGABRT)
    while server.alive():
        time.sleep(0.01)
    assert server.death() == "died with SIGABRT (exit code -6)"
    assert server.ensure_alive() == "died with SIGABRT (exit code -6)"
    assert server.alive()


def test_stop_ends_the_server_and_its_children(manager: ServerManager, tmp_path: Path) -> None:
    # A shell that does not exec: SIGTERM to the shell alone would orphan the listener.
    listen = script(tmp_path, "listen.py", LISTEN)
    server = manager.start("wrapped", ["sh", "-c", f"{sys.executable} {listen} {{port}}; :"])
    shell = server.pid
    assert shell is not None
    children = [proc.pid for proc in psutil.Process(shell).children(recursive=True)]
    assert children
    server.stop()
    assert all(gone(pid) for pid in [shell, *children])
    assert server.death() == "was stopped"


def test_a_name_in_use_cannot_start_twice(manager: ServerManager, tmp_path: Path) -> None:
    argv = [sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
    manager.start("one", argv)
    with pytest.raises(ServerError, match="A server named 'one' is already running"):
        manager.start("one", argv)


def test_daemon_is_known_by_its_pid_file_recorded_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(ledger, "record_process", lambda d, pid, **kw: recorded.append((pid, kw)))
    manager = ServerManager(tmp_path / "servers", run_dir=tmp_path / "run")
    argv = [sys.executable, script(tmp_path, "ctl.py", DAEMON), "{port}", "{pid_file}"]
    server = manager.start("sqlite", argv, daemon=True)
    try:
        daemon_pid = int(server.pid_file.read_text())
        assert server.pid == daemon_pid
        assert psutil.Process(daemon_pid).ppid() != os.getpid()  # not our child
        assert (daemon_pid, {"port": server.port, "name": "sqlite"}) in recorded
    finally:
        assert manager.stop_all() == []
    assert gone(daemon_pid)


def test_daemon_control_script_failing_is_reported(manager: ServerManager, tmp_path: Path) -> None:
    ctl = script(tmp_path, "ctl.py", "import sys\nprint('no data dir')\nsys.exit(3)\n")
    with pytest.raises(
        ServerStartError, match=r"(?s)its control script exited with code 3.*no data dir"
    ):
        manager.start("db", [sys.executable, ctl], daemon=True, ready="log:never")


def test_setsid_runs_the_server_in_place(manager: ServerManager, tmp_path: Path) -> None:
    # Servers are not made process-group leaders, so setsid(1) need not fork: the pid we
    # watch is the server's own, and it did get a session of its own.
    argv = ["setsid", sys.executable, script(tmp_path, "listen.py", LISTEN), "{port}"]
    server = manager.start("detached", argv)
    assert server.pid is not None
    assert os.getsid(server.pid) == server.pid
    assert psutil.Process(server.pid).cmdline()[1].endswith("listen.py")


# A control script whose pid file names a process it did not make: one started before it
# (argv[3]), or one it starts for another run or as another user.
FOREIGN_CONTROL = textwrap.dedent(
    """
    import os, subprocess, sys
    pid_file, kind, earlier = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "started-earlier":
        pid = earlier
    elif kind == "another-run":
        env = {**os.environ, "NOXLIB_RUN_ID": "20990101T000000-1-ffffffffffffffff"}
        pid = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True).pid
    else:
        pid = subprocess.Popen(["sleep", "60"], user=65534, start_new_session=True).pid
    with open(pid_file, "w") as out:
        out.write(f"{pid}\\n")
    """
)
REFUSED_BECAUSE = {
    "started-earlier": r"it started \d+\.\d\d s before the launch that would have made it",
    "another-run": "its environment holds NOXLIB_RUN_ID=20990101T000000-1-ffffffffffffffff",
    "another-user": "it belongs to uid 65534",
}


@pytest.mark.parametrize("kind", list(REFUSED_BECAUSE))
def test_a_pid_file_naming_a_process_the_start_did_not_make_is_refused(
    tmp_path: Path, kind: str
) -> None:
    if kind == "another-user" and os.getuid() != 0:
        pytest.skip("starting a process of another uid needs root")
    earlier = subprocess.Popen(["sleep", "60"])  # e.g. a server of a neighbour's, or our parent
    time.sleep(0.1)  # start times count in clock ticks (10 ms): make "before" unambiguous
    manager = ServerManager(tmp_path / "servers")
    ctl = script(tmp_path, "ctl.py", FOREIGN_CONTROL)
    argv = [sys.executable, ctl, "{pid_file}", kind, str(earlier.pid)]
    try:
        with pytest.raises(ServerStartError) as raised:
            # Ready at once, were it adopted: only the proof of the pid file can stop it.
            manager.start("db", argv, daemon=True, ready=lambda server: True, timeout=10)
        pid_file = manager.servers["db"].pid_file
        foreign = int(pid_file.read_text())
        message = str(raised.value)
        assert f"server 'db' refused pid {foreign} named by its pid file {pid_file}" in message
        assert re.search(REFUSED_BECAUSE[kind], message), message
        assert manager.stop_all() == []
        assert not gone(foreign), "a process that is not the server's must be left alone"
    finally:
        # By pid, whatever happened: the sleep the control script started, and ours.
        pid_file = tmp_path / "servers" / "db" / "server.pid"
        made = int(pid_file.read_text()) if pid_file.exists() else earlier.pid
        if made != earlier.pid and not gone(made):
            os.kill(made, signal.SIGKILL)
        earlier.kill()
        earlier.wait()
