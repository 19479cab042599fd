"""Triage's serial reruns with real pytest processes: one fresh process per round, only the
chosen tests, and a round that pytest reports interrupted stops the rest."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from noxlib.reruns import rerun, rerun_argv
from tests.conftest import nox_env

SUITE = """
    import os
    from pathlib import Path

    def note(name):
        with open(Path(__file__).parent / "pids.txt", "a") as out:
            out.write(f"{name} {os.getpid()}\\n")

    def test_passes():
        note("passes")

    def test_fails():
        note("fails")
        assert False

    def test_not_chosen():
        note("not_chosen")

    def test_stops_the_session():
        if os.environ.get("STOP") == "1":
            raise KeyboardInterrupt
"""


def suite(tmp_path: Path) -> Path:
    root = tmp_path / "suite"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_x.py").write_text(textwrap.dedent(SUITE))
    return root


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return nox_env(NOXLIB_RUN_DIR=str(tmp_path / "run"), NOXLIB_RUN_ID="rerun-test", **extra)


def test_each_round_is_one_fresh_process_over_the_chosen_tests(tmp_path: Path) -> None:
    root = suite(tmp_path)
    argv = rerun_argv(sys.executable, [str(root / "test_x.py")], ["-p", "no:cacheprovider", "-x"])
    ids = ["test_x.py::test_passes", "test_x.py::test_fails"]
    rounds = list(rerun(ids, 2, argv=argv, env=env(tmp_path), folder=tmp_path / "triage"))
    assert rounds == [{"test_x.py::test_passes": "passed", "test_x.py::test_fails": "failed"}] * 2
    notes = [line.split() for line in (root / "pids.txt").read_text().splitlines()]
    assert [name for name, _ in notes] == ["passes", "fails", "passes", "fails"]  # -x overridden
    assert notes[0][1] == notes[1][1] != notes[2][1] == notes[3][1]  # a process per round


def test_an_interrupted_round_stops_the_reruns(tmp_path: Path) -> None:
    root = suite(tmp_path)
    argv = rerun_argv(sys.executable, [str(root / "test_x.py")], ["-p", "no:cacheprovider"])
    ids = ["test_x.py::test_stops_the_session", "test_x.py::test_fails"]
    found = []
    with pytest.raises(KeyboardInterrupt, match="rerun 1 was interrupted"):
        found += rerun(ids, 2, argv=argv, env=env(tmp_path, STOP="1"), folder=tmp_path / "t")
    assert found == []
    assert not (tmp_path / "t" / "rerun-2").exists()


def test_a_time_limit_bounds_each_round(tmp_path: Path) -> None:
    # A batched run's hung test was stopped by its batch-timeout; its reruns get the limit too.
    root = tmp_path / "suite"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_h.py").write_text("import time\n\ndef test_hangs():\n    time.sleep(60)\n")
    argv = rerun_argv(sys.executable, [str(root / "test_h.py")], ["-p", "no:cacheprovider"])
    rounds = list(
        rerun(
            ["test_h.py::test_hangs"],
            2,
            argv=argv,
            env=env(tmp_path),
            folder=tmp_path / "t",
            # Long enough for a pytest under coverage on a loaded machine to reach the test
            # (1.5 s was not, in CI): the round must end in the test, not before it.
            timeout=5.0,
        )
    )
    assert rounds == [{"test_h.py::test_hangs": "timeout"}] * 2
