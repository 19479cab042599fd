"""The run ledger with many writer processes at once, as xdist workers and servers append."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from noxlib.reaping.ledger import read_ledger

RUN_ID = "20260101T000000-1-0123456789abcdef"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / RUN_ID
    folder.mkdir()
    return folder


WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from noxlib import reaping
    for i in range(int(sys.argv[2])):
        reaping.record_process(Path(sys.argv[1]), os.getpid(), port=i, name="w" * 60)
    """
)


def test_many_writers_at_once_leave_only_whole_lines(run_dir: Path) -> None:
    writers, each = 6, 150
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(each)])
        for _ in range(writers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    warnings: list[str] = []
    ledger = read_ledger(run_dir, warnings.append)
    assert warnings == []
    assert len(ledger.entries) == writers * each
    for proc in procs:
        ports = sorted(e.port or 0 for e in ledger.entries if e.pid == proc.pid)
        assert ports == list(range(each))
