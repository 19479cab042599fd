"""A server's files: placeholders, environments, folders and log tails."""

from __future__ import annotations

from pathlib import Path

from noxlib.servers.folders import Folders, expand, read_tail, server_environment


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
