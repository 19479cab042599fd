"""Batches under real nox: each test file its own pytest process, a crash or a hang costs only
its batch, leftovers are reaped and named, --resume reruns what did not pass, and the peak
memory of the run is measured."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from noxlib.reruns import START_FLOOR_SECONDS, START_SECONDS
from tests.conftest import nox_env, run_nox, wait_gone

PYPROJECT = """
[tool.noxlib]
install = []

[tool.noxlib.groups.gui]
paths = ["tests/gui"]
description = "Four files: a leftover process, a crash, a hang, a pass"
batch = "file"
batch-timeout = 8
"""

FILES = {
    "tests/gui/test_a_leaves.py": """
        import os, pathlib, subprocess

        def test_leaves_a_sleep():
            sleep = subprocess.Popen(["setsid", "sleep", "300"])
            pathlib.Path(os.environ["RECORD"], "sleep.pid").write_text(str(sleep.pid))
    """,
    "tests/gui/test_b_crashes.py": """
        import os

        def test_b1():
            pass

        def test_b2_dies():
            os._exit(3)

        def test_b3():
            pass
    """,
    "tests/gui/test_c_hangs.py": """
        import os, pathlib, subprocess, time

        def test_c1():
            pass

        def test_c2_hangs():
            # A child in the batch's own process group: the timeout must end the whole tree.
            child = subprocess.Popen(["sleep", "300"])
            pathlib.Path(os.environ["RECORD"], "child.pid").write_text(str(child.pid))
            time.sleep(120)
    """,
    "tests/gui/test_d_passes.py": """
        def test_d():
            pass
    """,
}


def last_run(project: Path) -> dict[str, object]:
    lines = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    run: dict[str, object] = json.loads(lines[-1])
    return run


@pytest.mark.parametrize("workers", ["1", "2"])
def test_four_batches_each_get_their_status_and_the_dirty_one_is_cleaned(
    make_project: Callable[..., Path], tmp_path: Path, workers: str
) -> None:
    project = make_project(PYPROJECT, FILES)
    record = tmp_path / "record"
    record.mkdir()
    env = nox_env(RECORD=str(record), PYTEST_WORKERS=workers)
    session = "tests" if workers == "1" else "tests-parallel"
    result = run_nox(project, "-s", session, env=env)
    assert result.returncode != 0, result.stdout  # a batch that did not pass fails the run
    statuses = {b["name"]: b for b in last_run(project)["batches"]}  # type: ignore[attr-defined]
    assert {name: b["status"] for name, b in statuses.items()} == {
        "tests/gui/test_a_leaves.py": "passed",
        "tests/gui/test_b_crashes.py": "crashed",
        "tests/gui/test_c_hangs.py": "timeout",
        "tests/gui/test_d_passes.py": "passed",
    }
    dirty = {name for name, b in statuses.items() if b["dirty"]}
    assert dirty == {"tests/gui/test_a_leaves.py"}
    assert "left 1 process running (sleep pid" in result.stdout
    assert "batch tests/gui/test_a_leaves.py passed: left 1 process running" in result.stdout
    if workers == "2":  # tests-parallel triages: its reruns start within what collection took
        start = re.search(r"limited to 8 s a test and ([0-9.]+) s to start", result.stdout)
        assert start, result.stdout
        assert START_FLOOR_SECONDS < float(start.group(1)) < START_SECONDS
    for name in ("sleep.pid", "child.pid"):
        pid = int((record / name).read_text())
        assert not psutil.pid_exists(pid) or not wait_gone([psutil.Process(pid)], 10), name
    # Nothing of the run is left: no process carries its id.
    run_id = str(last_run(project)["run_id"])
    assert not [p for p in psutil.process_iter() if _env(p).get("NOXLIB_RUN_ID") == run_id]
    counts = last_run(project)["counts"]
    assert counts["crashed"] == 1  # type: ignore[index]
    assert counts["timeout"] == 1  # type: ignore[index]
    assert counts["passed"] == 5  # type: ignore[index]  # test_b3 ran after the crash

    # Triage of the hung test was checked above: the resumed run skips it (two reruns of 9 s).
    resumed = run_nox(project, "-s", session, "--", "--resume", "--no-triage", env=env)
    assert resumed.returncode != 0
    assert "--resume: skipping 2 batch(es) that passed in run" in resumed.stdout
    ran = [b["name"] for b in last_run(project)["batches"] if b["status"] != "skipped"]  # type: ignore[attr-defined]
    assert sorted(ran) == ["tests/gui/test_b_crashes.py", "tests/gui/test_c_hangs.py"]
    report = (project / "reports" / "ci_timings.md").read_text()
    assert "| `tests/gui/test_a_leaves.py` | skipped |" in report


def _env(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except psutil.Error:
        return {}


MEMORY = {
    "tests/test_memory.py": """
        import time

        def test_holds_300_mb():
            block = bytearray(300 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1  # touch every page, so the memory is resident
            time.sleep(2.5)  # longer than the sampler's interval
            assert block[0] == 1
    """,
}


def test_the_peak_memory_of_a_run_is_measured(make_project: Callable[..., Path]) -> None:
    pyproject = '[tool.noxlib]\ninstall = []\n[tool.noxlib.groups.unit]\npaths = ["tests"]\n'
    project = make_project(pyproject, MEMORY)
    result = run_nox(project, "-s", "tests", env=nox_env())
    assert result.returncode == 0, result.stdout
    peak = int(str(last_run(project)["peak_rss_bytes"]))
    assert peak >= 300 * 2**20
    assert last_run(project)["memory_budget_bytes"] == 2 * 2**30
    assert "- Peak memory: 3" in (project / "reports" / "ci_timings.md").read_text()


def test_a_bad_batch_setting_names_the_key(make_project: Callable[..., Path]) -> None:
    project = make_project(PYPROJECT.replace('batch = "file"', 'batch = "files"'), FILES)
    result = run_nox(project, "-s", "tests", env=nox_env())
    assert result.returncode != 0
    assert "tool.noxlib.groups.gui.batch = 'files': expected \"file\"" in result.stdout
    assert not (project / ".nox").exists()
    assert os.path.exists(project / "pyproject.toml")


SERVER_PYPROJECT = """
[tool.noxlib]
install = []

[tool.noxlib.groups.app]
paths = ["tests/app"]
batch = "file"
"""

SERVER_FILES = {
    "tests/app/conftest.py": """
        import sys
        import pytest

        APP = (
            "import socket, sys\\n"
            "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\\n"
            "while True:\\n"
            "    s.accept()[0].close()\\n"
        )

        @pytest.fixture(scope="session")
        def app(noxlib_servers):
            # One app for the whole run: started once, kept between batches.
            return noxlib_servers.start("app", [sys.executable, "-c", APP, "{port}"], shared=True)
    """,
    "tests/app/test_1_kills.py": """
        import os, signal, time

        def test_kills_the_app(app):
            os.kill(app.pid, signal.SIGKILL)
            time.sleep(0.5)
    """,
    "tests/app/test_2_uses.py": """
        import socket

        def test_uses_the_app(app):
            socket.create_connection(("127.0.0.1", app.port), timeout=5).close()
    """,
}


def test_the_next_batch_says_the_shared_server_was_restarted(
    make_project: Callable[..., Path],
) -> None:
    project = make_project(SERVER_PYPROJECT, SERVER_FILES)
    result = run_nox(project, "-s", "tests", env=nox_env())
    assert result.returncode == 0, result.stdout
    batches = {b["name"]: b for b in last_run(project)["batches"]}  # type: ignore[attr-defined]
    killer, user = batches["tests/app/test_1_kills.py"], batches["tests/app/test_2_uses.py"]
    assert killer["dirty"]
    assert any("server app died with SIGKILL" in r for r in killer["dirty_reasons"])
    assert user["status"] == "passed"
    assert user["dirty_reasons"] == ["server app restarted 1 time"]
    assert "batch tests/app/test_2_uses.py passed: server app restarted 1 time" in result.stdout
