"""The run ledger: what an entry holds, and what a reader refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest

from noxlib.reaping import runs
from noxlib.reaping.identity import boot_id, start_ticks
from noxlib.reaping.ledger import (
    LEDGER,
    MAX_LINE,
    MAX_WARNINGS,
    open_ledger,
    read_ledger,
    record_process,
)
from noxlib.reaping.sweep import finish_run

RUN_ID = "20260101T000000-1-0123456789abcdef"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / RUN_ID
    folder.mkdir()
    return folder


def lines(run_dir: Path) -> list[dict[str, object]]:
    text = (run_dir / LEDGER).read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_an_entry_holds_what_proves_the_process_later(run_dir: Path) -> None:
    record_process(run_dir, os.getpid(), port=8123, name="db")
    (entry,) = lines(run_dir)
    me = psutil.Process()
    assert entry["pid"] == os.getpid()
    assert entry["create_time"] == me.create_time()
    assert entry["start_ticks"] == start_ticks(os.getpid())
    assert entry["boot_id"] == boot_id()
    assert entry["uid"] == os.getuid()
    assert (entry["name"], entry["port"], entry["run_id"]) == ("db", 8123, RUN_ID)
    (parsed,) = read_ledger(run_dir, print).entries
    assert (parsed.pid, parsed.port, parsed.name) == (os.getpid(), 8123, "db")


def test_the_ledger_is_private_to_the_user(tmp_path: Path) -> None:
    run = runs.start_run(tmp_path / ".noxlib")
    try:
        open_ledger(run)
        assert (run.dir / LEDGER).stat().st_mode & 0o077 == 0
        assert run.dir.stat().st_mode & 0o077 == 0
        header = read_ledger(run.dir, print).header
        assert header is not None
        assert header.boot_id == boot_id()
    finally:
        finish_run(run, print)


def test_a_reader_skips_every_line_it_cannot_trust_with_a_warning(run_dir: Path) -> None:
    record_process(run_dir, os.getpid())
    good = lines(run_dir)[0]
    bad = [
        "garbage",
        "[]",
        json.dumps({**good, "pid": 0}),
        json.dumps({**good, "pid": 1}),
        json.dumps({**good, "pid": -1}),
        json.dumps({**good, "pid": "12"}),
        json.dumps({**good, "pid": True}),
        json.dumps({**good, "uid": os.getuid() + 1}),
        json.dumps({**good, "run_id": "another"}),
        json.dumps({**good, "create_time": None}),
        json.dumps({**good, "boot_id": 7}),
        "x" * (MAX_LINE + 1),
    ]
    with (run_dir / LEDGER).open("a") as ledger:
        ledger.write("\n".join(bad) + "\n\n")
    warnings: list[str] = []
    ledger_read = read_ledger(run_dir, warnings.append)
    assert [e.pid for e in ledger_read.entries] == [os.getpid()]
    assert len(warnings) == len(bad)
    assert all(w.startswith("noxlib: warning: skipped line ") for w in warnings)
    assert "pid 0 is not a process noxlib may end" in warnings[2]
    assert f"belongs to uid {os.getuid() + 1}" in warnings[7]


def test_a_missing_or_empty_ledger_is_an_empty_one(run_dir: Path) -> None:
    warnings: list[str] = []
    assert read_ledger(run_dir, warnings.append).entries == []
    (run_dir / LEDGER).touch()
    assert read_ledger(run_dir, warnings.append).entries == []
    assert warnings == []


def test_warnings_about_a_garbage_ledger_are_capped(run_dir: Path) -> None:
    (run_dir / LEDGER).write_text("garbage\n" * 500)
    warnings: list[str] = []
    read_ledger(run_dir, warnings.append)
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[-1] == f"noxlib: warning: skipped {500 - MAX_WARNINGS} more line(s)"


def test_the_plugin_api_records_in_the_current_run_and_is_a_no_op_outside(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noxlib import plugin

    monkeypatch.delenv(runs.RUN_DIR_ENV, raising=False)
    plugin.record_process(os.getpid())
    assert not (run_dir / LEDGER).exists()
    monkeypatch.setenv(runs.RUN_DIR_ENV, str(run_dir))
    plugin.record_process(os.getpid(), port=5432, name="postgres")
    (entry,) = lines(run_dir)
    assert (entry["pid"], entry["port"], entry["name"]) == (os.getpid(), 5432, "postgres")
