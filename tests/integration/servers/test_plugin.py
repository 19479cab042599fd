"""The ``noxlib_servers`` fixture seen from a test suite: real pytest runs (pytester, in
subprocesses, since servers are child processes and signals are involved) of small suites
whose servers really abort, hang, crash, ignore SIGTERM and share themselves among workers."""

from __future__ import annotations

import os
import re
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytest_plugins = ["pytester"]

# A tiny line server: answers "pong"; aborts when asked to; other behaviours by argv[2].
SERVER = r"""
import os, signal, socket, sys, time

port, behaviour = int(sys.argv[1]), sys.argv[2]
events = os.environ.get("EVENTS_FILE")

def note(line):
    print(line, flush=True)
    if events:
        with open(events, "a") as out:
            out.write(line + "\n")

note(f"started pid {os.getpid()} home {os.environ['HOME']}")
if behaviour == "abort-at-start":
    note("cannot open the database: aborting")
    os.abort()
if behaviour == "never-ready":
    while True:
        note("still warming up")
        time.sleep(0.2)
if behaviour == "ignore-sigterm":
    signal.signal(signal.SIGTERM, lambda *args: note("ignoring SIGTERM"))
else:
    signal.signal(signal.SIGTERM, lambda *args: (note(f"stopped pid {os.getpid()}"), sys.exit(0)))
listener = socket.create_server(("127.0.0.1", port))
note(f"listening on {port}")
while True:
    conn, _ = listener.accept()
    with conn:
        if conn.recv(100).startswith(b"abort"):
            note("asked to abort: aborting")
            os.abort()
        conn.sendall(b"pong")
"""

CONFTEST = """
import socket, sys, time
from pathlib import Path
import pytest

SERVER = str(Path(__file__).parent / "server.py")

def wait_dead(server, timeout=10):
    # The connection breaks as the server aborts, but its death (a core dump may be written)
    # can take longer: wait, so that it really dies *during* the test that killed it.
    deadline = time.monotonic() + timeout
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.01)


def talk(server, message=b"ping"):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(message)
        return conn.recv(100)
"""


@pytest.fixture(autouse=True)
def outside_any_noxlib_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner pytest must not write into (or register servers with) an outer noxlib run.
    for name in ("NOXLIB_RUN_ID", "NOXLIB_RUN_DIR", "NOXLIB_GROUPS", "PYTEST_XDIST_WORKER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(server=SERVER)
    return pytester


@pytest.fixture
def started_pids(tmp_path: Path) -> Iterator[list[int]]:
    """Pids the test learns of; any still running at the end is killed (by pid) and fails it."""
    pids: list[int] = []
    yield pids
    leftovers = [pid for pid in pids if _running(pid)]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"servers left running: {leftovers}"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_suite(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", *args, timeout=180)


def server_conftest(
    suite: pytest.Pytester, name: str, behaviour: str, events: Path | None = None, **options: object
) -> None:
    """A conftest whose session fixture ``name`` starts server ``name`` (server.py in mode
    ``behaviour``) with ``options`` for ``start``; ``events`` is where it notes what it did."""
    extra = "".join(f", {key}={value!r}" for key, value in options.items())
    if events is not None:
        extra += f", env={{'EVENTS_FILE': {str(events)!r}}}"
    suite.makeconftest(
        CONFTEST
        + f"""
@pytest.fixture(scope="session")
def {name}(noxlib_servers):
    return noxlib_servers.start(
        {name!r}, [sys.executable, SERVER, "{{port}}", {behaviour!r}]{extra}
    )
"""
    )


def pids_in(path: Path, word: str) -> list[int]:
    text = path.read_text() if path.exists() else ""
    return [int(pid) for pid in re.findall(rf"^{word} pid (\d+)", text, re.MULTILINE)]


def test_server_aborting_at_startup_names_the_signal_and_shows_its_log(
    suite: pytest.Pytester,
) -> None:
    server_conftest(suite, "db", "abort-at-start")
    suite.makepyfile(test_it="def test_query(db):\n    pass\n")
    result = run_suite(suite)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*server 'db' exited before it was ready: died with SIGABRT (exit code -6).",
            "*  argv: * [0-9]* abort-at-start",  # as it ran: {port} filled in
            "*  cwd: */db/cwd",  # its own folder (isolate=True), where relative paths resolve
            "*--- last 40 lines of *server.log ---",
            "*cannot open the database: aborting",
        ]
    )
    result.stdout.no_fnmatch_line("*Connection refused*")


def test_server_never_ready_times_out_with_its_log_tail(suite: pytest.Pytester) -> None:
    server_conftest(suite, "slow", "never-ready", ready="tcp", timeout=1.5)
    suite.makepyfile(test_it="def test_query(slow):\n    pass\n")
    started = time.monotonic()
    result = run_suite(suite)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*server 'slow' was not ready after 1.5 s (ready='tcp'; last check: connecting to "
            "port * Connection refused).",
            "*--- last 40 lines of *server.log ---",
            "*still warming up",
        ]
    )
    assert time.monotonic() - started < 60


def test_server_crashing_mid_test_is_restarted_for_the_next_and_the_reports_say_so(
    suite: pytest.Pytester, started_pids: list[int]
) -> None:
    events = suite.path / "events.txt"
    server_conftest(suite, "api", "serve", events)
    suite.makepyfile(
        test_crash="""
        from conftest import talk, wait_dead

        def test_crashes_it(api):
            try:
                assert talk(api, b"abort") == b"pong"
            finally:
                wait_dead(api)

        def test_after_the_crash(api):
            assert talk(api) == b"pong"
        """
    )
    result = run_suite(suite, "--junitxml=junit.xml")
    started_pids.extend(pids_in(events, "started"))
    result.assert_outcomes(failed=1, passed=1)
    crashed, restarted = pids_in(events, "started")
    assert crashed != restarted
    died = "server 'api' died with SIGABRT (exit code -6) during test_crash.py::test_crashes_it"
    result.stdout.fnmatch_lines(
        [
            # the failing test's report: the death with its log tail, then the log section
            "*- noxlib servers -*",
            died,
            "*asked to abort: aborting",
            "*- noxlib server 'api' (fixture api) log -*",
            "*asked to abort: aborting",
            # the terminal summary: both events
            "*= noxlib servers =*",
            died,
            f"{died}; restarted for test_crash.py::test_after_the_crash",
        ]
    )
    properties = {
        case.get("name"): [p.get("value") for p in case.iter("property")]
        for case in ET.parse(suite.path / "junit.xml").iter("testcase")
    }
    assert properties["test_after_the_crash"] == [
        f"{died}; restarted for test_crash.py::test_after_the_crash"
    ]


def test_respawn_false_errors_at_once_with_the_reason(
    suite: pytest.Pytester, started_pids: list[int]
) -> None:
    events = suite.path / "events.txt"
    server_conftest(suite, "api", "serve", events, respawn=False)
    suite.makepyfile(
        test_once="""
        import contextlib
        from conftest import talk, wait_dead

        def test_crashes_it(api):
            with contextlib.suppress(OSError):
                talk(api, b"abort")
            wait_dead(api)

        def test_after_the_crash(api):
            assert talk(api) == b"pong"
        """
    )
    result = run_suite(suite, "--durations=0", "--durations-min=0")
    started_pids.extend(pids_in(events, "started"))
    result.assert_outcomes(passed=1, errors=1)
    assert len(pids_in(events, "started")) == 1
    result.stdout.fnmatch_lines(
        [
            "*ServerDiedError: server 'api' died with SIGABRT (exit code -6) during "
            "test_once.py::test_crashes_it; not restarted for test_once.py::test_after_the_crash "
            "because respawn=False.",
            "*asked to abort: aborting",
        ]
    )
    setup = re.search(r"([\d.]+)s setup\s+test_once.py::test_after_the_crash", result.stdout.str())
    assert setup is not None
    assert float(setup.group(1)) < 5


def test_server_ignoring_sigterm_is_killed_after_the_grace_period(
    suite: pytest.Pytester, started_pids: list[int]
) -> None:
    events = suite.path / "events.txt"
    server_conftest(suite, "stubborn", "ignore-sigterm", events, grace=1)
    suite.makepyfile(
        test_it="""
        from conftest import talk

        def test_uses_it(stubborn):
            assert talk(stubborn) == b"pong"
            print("log at", stubborn.log_path)
        """
    )
    result = run_suite(suite, "-s")
    (pid,) = pids_in(events, "started")
    started_pids.append(pid)
    result.assert_outcomes(passed=1)
    assert not _running(pid)
    assert "ignoring SIGTERM" in events.read_text()
    log = Path(re.search(r"log at (\S+)", result.stdout.str()).group(1))  # type: ignore[union-attr]
    assert (
        f"server 'stubborn' killed with SIGKILL after ignoring SIGTERM for 1 s (pid {pid})"
        in log.read_text()
    )


def test_two_workers_share_one_server_and_it_stops_once(
    suite: pytest.Pytester, started_pids: list[int]
) -> None:
    events = suite.path / "events.txt"
    seen = suite.path / "seen.txt"
    server_conftest(suite, "api", "serve", events, shared=True)
    suite.makepyfile(
        test_shared=f"""
        import os, time
        from conftest import talk

        def test_uses_it(api):
            assert talk(api) == b"pong"
            with open({str(seen)!r}, "a") as out:
                out.write(f"{{os.environ['PYTEST_XDIST_WORKER']}} {{api.pid}}\\n")
            time.sleep(0.5)  # both workers hold it at once
        """
    )
    result = run_suite(suite, "-n", "2", "--dist", "each")
    started_pids.extend(pids_in(events, "started"))
    result.assert_outcomes(passed=2)
    workers, pids = zip(*(line.split() for line in seen.read_text().splitlines()), strict=True)
    assert sorted(workers) == ["gw0", "gw1"]
    assert len(set(pids)) == 1
    assert pids_in(events, "started") == [int(pids[0])]
    assert pids_in(events, "stopped") == [int(pids[0])]


def test_isolated_servers_have_homes_of_their_own(
    suite: pytest.Pytester, started_pids: list[int]
) -> None:
    events = suite.path / "events.txt"
    suite.makeconftest(
        CONFTEST
        + f"""
def start(manager, name):
    return manager.start(
        name, [sys.executable, SERVER, "{{port}}", "serve"],
        env={{"EVENTS_FILE": {str(events)!r}}},
    )

@pytest.fixture(scope="session")
def one(noxlib_servers):
    return start(noxlib_servers, "one")

@pytest.fixture(scope="session")
def two(noxlib_servers):
    return start(noxlib_servers, "two")
"""
    )
    suite.makepyfile(
        test_homes="""
        def test_both(one, two):
            assert one.home != two.home
            print("homes", one.home, two.home)
        """
    )
    result = run_suite(suite, "-s")
    started_pids.extend(pids_in(events, "started"))
    result.assert_outcomes(passed=1)
    homes = re.findall(r"^started pid \d+ home (\S+)$", events.read_text(), re.MULTILINE)
    expected = re.search(r"homes (\S+) (\S+)", result.stdout.str())
    assert expected is not None
    assert sorted(homes) == sorted(expected.groups())
    assert len(set(homes)) == 2
    assert os.environ.get("HOME") not in homes
