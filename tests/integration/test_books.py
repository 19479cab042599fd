"""The run's books under real nox, for every kind of part: a lost result, a result written
twice and a process killed mid-test are each named, and each fails the run.

The faults are injected from inside the real pytest processes: the project's conftest.py
rewrites its process's results file as the process ends (a lost or doubled write), or kills
its own process with SIGKILL in the middle of a test.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import PLAIN_PYPROJECT, nox_env, run_nox

PYPROJECT = PLAIN_PYPROJECT

CONFTEST = """
import json
import os
import signal
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _kill_on_request(request):
    if os.environ.get("KILL") == request.node.nodeid:
        os.kill(os.getpid(), signal.SIGKILL)
    yield


def pytest_unconfigure(config):
    # TAMPER=drop=ID or TAMPER=dup=ID: the results file loses, or repeats, ID's line.
    how, _, nodeid = os.environ.get("TAMPER", "").partition("=")
    recorder = config.pluginmanager.get_plugin("noxlib-results")
    if not how or recorder is None:
        return
    path = recorder.path
    lines = path.read_text().splitlines(keepends=True)
    mine = [line for line in lines if json.loads(line)["nodeid"] == nodeid]
    if how == "drop":
        lines = [line for line in lines if line not in mine]
    else:
        lines += mine
    path.write_text("".join(lines))
"""

FILES = {"tests/conftest.py": CONFTEST}
for _letter in "abcd":
    FILES[f"tests/test_{_letter}.py"] = "".join(
        f"def test_{_letter}{n}():\n    pass\n\n\n" for n in (1, 2, 3)
    )
IDS = sorted(f"tests/test_{x}.py::test_{x}{n}" for x in "abcd" for n in (1, 2, 3))

# The kinds of part: (session, arguments after --, PYTEST_WORKERS).
KINDS = {
    "serial": ("tests", (), "1"),
    "shards-by-file": ("tests-parallel", ("--engine", "shards"), "2"),
    "shards-by-test": ("tests-parallel", ("--engine", "shards", "-k", "test"), "2"),
    "xdist": ("tests-parallel", ("--engine", "xdist"), "2"),
    "batches": ("tests", ("--batch", "file"), "1"),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_project

    return write_project(tmp_path_factory.mktemp("books") / "proj", PYPROJECT, FILES)


def run_kind(project: Path, kind: str, **env: str) -> tuple[str, dict[str, str], int]:
    session, args, workers = KINDS[kind]
    # Equal durations before each run (a run records its own, which differ in noise): two
    # shards balance by whole files.
    (project / ".test_durations").write_text(json.dumps(dict.fromkeys(IDS, 0.1)))
    result = run_nox(
        project, "-R", "-s", session, "--", *args, env=nox_env(PYTEST_WORKERS=workers, **env)
    )
    lines = (project / "reports" / "results.jsonl").read_text().splitlines()
    outcomes = {}
    for line in lines:
        record = json.loads(line)
        outcomes[record["nodeid"]] = record["outcome"]
    assert len(outcomes) == len(lines), "the merged results hold one line per test"
    return result.stdout, outcomes, result.returncode


def victim(kind: str, fault: str) -> str:
    return random.Random(f"{kind}-{fault}").choice(IDS)


@pytest.mark.parametrize("kind", KINDS)
def test_a_clean_run_balances(project: Path, kind: str) -> None:
    out, outcomes, code = run_kind(project, kind)
    assert code == 0, out
    assert outcomes == dict.fromkeys(IDS, "passed")
    assert "every collected test ran once (12 tests)" in out
    if kind == "shards-by-file":
        assert "shards collect only their own files" in out


@pytest.mark.parametrize("kind", KINDS)
def test_a_lost_result_is_not_run_and_fails_the_run(project: Path, kind: str) -> None:
    lost = victim(kind, "drop")
    out, outcomes, code = run_kind(project, kind, TAMPER=f"drop={lost}")
    assert code != 0, out
    assert outcomes == {**dict.fromkeys(IDS, "passed"), lost: "not-run"}
    assert "the books do not balance" in out
    assert "1 test never ran" in out
    assert lost in out
    history = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["counts"]["not-run"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_result_written_twice_is_a_conflict_that_fails_the_run(project: Path, kind: str) -> None:
    twice = victim(kind, "dup")
    out, outcomes, code = run_kind(project, kind, TAMPER=f"dup={twice}")
    assert code != 0, out
    assert outcomes == dict.fromkeys(IDS, "passed")
    assert f"1 test reported more than once: {twice}" in out


@pytest.mark.parametrize("kind", KINDS)
def test_a_process_killed_mid_test_names_that_test(project: Path, kind: str) -> None:
    killed = victim(kind, "kill")
    out, outcomes, code = run_kind(project, kind, KILL=killed)
    assert code != 0, out
    assert outcomes == {**dict.fromkeys(IDS, "passed"), killed: "crashed"}
    assert "every collected test ran once (12 tests)" in out  # the rest ran in a new process
