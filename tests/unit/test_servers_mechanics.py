"""noxlib.servers' small pure pieces: exit descriptions, placeholders, environments, folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.reaping.processes import describe_exit
from noxlib.servers.folders import Folders, expand, read_tail, server_environment
from noxlib.servers.handle import ServerSpec


@pytest.mark.parametrize(
    ("returncode", "said"),
    [
        (-6, "died with SIGABRT (exit code -6)"),
        (-9, "died with SIGKILL (exit code -9)"),
        (134, "exited with code 134 (a shell's way of saying SIGABRT)"),
        (3, "exited with code 3"),
        (0, "exited with code 0"),
    ],
)
def test_exits_are_described_with_signal_names(returncode: int, said: str) -> None:
    assert describe_exit(returncode) == said


def test_expand_fills_known_placeholders_and_leaves_other_braces() -> None:
    values = {"port": "8123", "home": "/h"}
    assert expand('{"port": {port}, "x": "{other}"} {home}', values) == (
        '{"port": 8123, "x": "{other}"} /h'
    )


def test_isolated_environment_has_own_folders_and_keeps_the_run_identity(
    tmp_path: Path,
) -> None:
    folders = Folders(tmp_path / "api").create()
    base = {"HOME": "/root", "PATH": "/bin", "NOXLIB_RUN_ID": "run-1", "NOXLIB_RUN_DIR": "/r"}
    extra = {"NOXLIB_RUN_ID": "mine", "DB_URL": "db://localhost:{port}"}
    env = server_environment(base, folders, extra, {"port": "5"}, isolate=True)
    assert env["HOME"] == str(folders.home)
    assert env["TMPDIR"] == str(folders.tmp)
    assert env["XDG_CACHE_HOME"] == str(folders.root / "xdg-cache")
    assert (folders.root / "xdg-runtime").stat().st_mode & 0o777 == 0o700
    assert env["PATH"] == "/bin"
    assert env["DB_URL"] == "db://localhost:5"
    assert (env["NOXLIB_RUN_ID"], env["NOXLIB_RUN_DIR"]) == ("run-1", "/r")


def test_without_isolation_the_environment_keeps_home(tmp_path: Path) -> None:
    folders = Folders(tmp_path / "api").create()
    env = server_environment({"HOME": "/root"}, folders, {}, {}, isolate=False)
    assert env["HOME"] == "/root"
    assert "XDG_CACHE_HOME" not in env


def test_read_tail_reads_last_lines_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("old\n" + "".join(f"line {n}\n" for n in range(50)))
    assert read_tail(log, lines=2) == "line 48\nline 49"
    assert read_tail(log, start=4, lines=100).splitlines()[0] == "line 0"
    assert read_tail(tmp_path / "missing") == ""


@pytest.mark.parametrize(
    ("argv", "ready", "needs"),
    [
        (("srv", "--port", "{port}"), "log:up", True),
        (("srv",), "tcp", True),
        (("srv",), "http:/health", True),
        (("srv",), "log:up", False),
    ],
)
def test_a_port_is_picked_when_argv_or_readiness_needs_one(
    argv: tuple[str, ...], ready: str, needs: bool
) -> None:
    assert ServerSpec("s", argv, ready).needs_port() is needs
