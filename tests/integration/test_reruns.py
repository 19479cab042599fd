"""Triage's reruns with real pytest processes: one fresh process per rerun, only the chosen
tests, in the order given, a time limit on every rerun, and a rerun that pytest reports
interrupted stops the rest."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from noxlib.reruns import Rerunner, rerun_argv
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


def runner(
    tmp_path: Path,
    root: Path,
    per_test: float = 60.0,
    test_timeout: float | None = None,
    **extra: str,
) -> Rerunner:
    def argv(ids: object) -> tuple[str, ...]:
        return rerun_argv(sys.executable, [str(root)], ["-p", "no:cacheprovider", "-x"])

    folder = tmp_path / "triage"
    return Rerunner(argv, env(tmp_path, **extra), folder, per_test, test_timeout=test_timeout)


def notes(root: Path) -> list[list[str]]:
    return [line.split() for line in (root / "pids.txt").read_text().splitlines()]


def test_each_rerun_is_one_fresh_process_over_the_chosen_tests(tmp_path: Path) -> None:
    root = suite(tmp_path)
    rerunner = runner(tmp_path, root)
    ids = ["test_x.py::test_passes", "test_x.py::test_fails"]
    found = [rerunner.run(ids) for _ in range(2)]
    assert found == [{"test_x.py::test_passes": "passed", "test_x.py::test_fails": "failed"}] * 2
    noted = notes(root)
    assert [name for name, _ in noted] == ["passes", "fails", "passes", "fails"]  # -x overridden
    assert noted[0][1] == noted[1][1] != noted[2][1] == noted[3][1]  # a process per rerun
    assert rerunner.outcome(["test_x.py::test_fails"]) == "failed"


def test_a_rerun_keeps_the_order_it_is_given(tmp_path: Path) -> None:
    # The company of a failed test reruns in the order it ran in, not collection's order.
    root = suite(tmp_path)
    ids = ["test_x.py::test_not_chosen", "test_x.py::test_fails", "test_x.py::test_passes"]
    runner(tmp_path, root).run(ids)
    assert [name for name, _ in notes(root)] == ["not_chosen", "fails", "passes"]


def test_an_interrupted_rerun_is_raised(tmp_path: Path) -> None:
    root = suite(tmp_path)
    rerunner = runner(tmp_path, root, STOP="1")
    with pytest.raises(KeyboardInterrupt, match="rerun-1 was interrupted"):
        rerunner.run(["test_x.py::test_stops_the_session", "test_x.py::test_fails"])


def test_a_time_limit_bounds_every_rerun(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_h.py").write_text("import time\n\ndef test_hangs():\n    time.sleep(60)\n")
    # Long enough for a pytest under coverage on a loaded machine to reach the test (1.5 s was
    # not, in CI): the rerun must end in the test, not before it.
    rerunner = runner(tmp_path, root, per_test=0.0)
    assert rerunner.outcome(["test_h.py::test_hangs"], limit=5.0) == "timeout"
    assert rerunner.limit(3) == 60.0  # START_SECONDS and nothing per test: the default is set


def test_a_hung_test_ends_at_its_own_limit_not_at_the_reruns(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_h.py").write_text("import time\n\ndef test_hangs():\n    time.sleep(60)\n")
    rerunner = runner(tmp_path, root, per_test=2.0, test_timeout=2.0)  # the rerun: 60 + 2 s
    [found] = rerunner.run(["test_h.py::test_hangs"]).items()
    assert found == ("test_h.py::test_hangs", "timeout")
    rerun = tmp_path / "triage" / "rerun-1" / "part" / "results.jsonl"
    assert "ran past the limit of 2 s a test" in rerun.read_text()
