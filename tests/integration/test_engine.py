"""The parts engine with real pytest processes: tiny suites in tmp dirs, each part a real
``python -m pytest`` with noxlib's plugin active, as a noxlib session starts them.

What the engine learns comes from the files the plugin writes in each part's folder, so these
tests read those files too: results.jsonl says which tests ran, and how they ended.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from noxlib.engine import run_parts
from noxlib.idfile import read_ids
from noxlib.outcomes import RunStatus
from noxlib.partrun import Part, PartOutcome
from tests.conftest import nox_env

# Plugins these suites do not use, left out so that each process starts fast.
ARGS = ("-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")


def write_suite(root: Path, files: dict[str, str]) -> Path:
    """A suite at ``root``: its own pytest.ini (so node ids are relative to it) and ``files``."""
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def make_part(
    tmp_path: Path, name: str, suite: Path, *extra: str, env: dict[str, str] | None = None
) -> Part:
    """A part as a session makes one: pytest over ``suite``, inside run ``engine-test``."""
    part_env = nox_env(
        NOXLIB_RUN_DIR=str(tmp_path / "run"),
        NOXLIB_RUN_ID="engine-test",
        NOXLIB_PART_NAME=name,
        **(env or {}),
    )
    argv = (sys.executable, "-m", "pytest", str(suite), *ARGS, *extra)
    return Part(name, argv, part_env, tmp_path / "parts" / name)


def results(outcome: PartOutcome) -> list[dict[str, object]]:
    path = outcome.part.files.results
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_id(outcome: PartOutcome) -> dict[str, str]:
    found = results(outcome)
    assert len(found) == len({r["nodeid"] for r in found}), found  # one line per test
    return {str(r["nodeid"]): str(r["outcome"]) for r in found}


def log(outcome: PartOutcome) -> str:
    return outcome.part.files.log.read_text(errors="replace")


def test_two_shards_run_every_test_exactly_once(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "suite",
        {
            "test_a.py": "".join(f"def test_a{i}():\n    pass\n" for i in range(7)),
            "test_b.py": """
                import pytest

                @pytest.mark.parametrize("n", range(5))
                def test_b(n):
                    pass

                class TestC:
                    def test_c1(self):
                        pass

                    def test_c2(self):
                        pass
            """,
        },
    )
    parts = [
        make_part(tmp_path, f"shard-{k}", suite, env={"NOXLIB_SHARDS": f"{k}/2"}) for k in (1, 2)
    ]
    outcomes = run_parts(parts, slots=2)
    assert [o.status for o in outcomes] == ["passed", "passed"], [log(o) for o in outcomes]
    ran = [results(o) for o in outcomes]
    assert all(ran), "a shard ran nothing"
    ids = Counter(str(r["nodeid"]) for part in ran for r in part)
    expected = {f"test_a.py::test_a{i}" for i in range(7)}
    expected |= {f"test_b.py::test_b[{n}]" for n in range(5)}
    expected |= {"test_b.py::TestC::test_c1", "test_b.py::TestC::test_c2"}
    assert set(ids) == expected
    assert set(ids.values()) == {1}
    for outcome in outcomes:
        assert {r["outcome"] for r in results(outcome)} == {"passed"}
        # The part ran what it said it would (share.jsonl), as its shard of one plan.
        assert sorted(read_ids(outcome.part.files.share)) == sorted(by_id(outcome))
        assert outcome.attempts == 1
    plans = [
        [e["plans"] for e in o.part.files.events() if e.get("event") == "selected"]
        for o in outcomes
    ]
    assert plans[0] == plans[1]
    assert len(plans[0]) == 1


CRASHING = """
    import os
    from pathlib import Path

    def note(name):
        with open(Path(__file__).parent / "pids.txt", "a") as out:
            out.write(f"{name} {os.getpid()}\\n")

    def test_1():
        note("test_1")

    def test_2():
        note("test_2")
        os._exit(3)

    def test_3():
        note("test_3")

    def test_4():
        note("test_4")
        assert False, "fails after the crash"
"""


def test_a_crashed_test_is_recorded_and_the_rest_run_in_a_new_process(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", {"test_crash.py": CRASHING})
    (outcome,) = run_parts([make_part(tmp_path, "serial", suite)], slots=1)
    assert outcome.status == "crashed", log(outcome)
    assert outcome.attempts == 2
    assert outcome.crashed == ["test_crash.py::test_2"]
    assert outcome.exit_code == 1  # the second process's: test_4 failed
    assert by_id(outcome) == {
        "test_crash.py::test_1": "passed",
        "test_crash.py::test_2": "crashed",
        "test_crash.py::test_3": "passed",
        "test_crash.py::test_4": "failed",
    }
    crash = next(r for r in results(outcome) if r["outcome"] == "crashed")
    assert "The pytest process of part serial exited with code 3 while this test ran" in str(
        crash["longrepr"]
    )
    pids = dict(line.split() for line in (suite / "pids.txt").read_text().splitlines())
    assert pids["test_1"] == pids["test_2"]
    assert pids["test_3"] == pids["test_4"] != pids["test_2"]  # a second process
    # The second process was given exactly the tests the first had not reached.
    assert read_ids(outcome.part.files.select) == [
        "test_crash.py::test_3",
        "test_crash.py::test_4",
    ]


def test_a_crash_in_the_last_test_ends_the_part(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "suite",
        {
            "test_last.py": """
                import os

                def test_ok():
                    pass

                def test_dies():
                    os._exit(9)
            """
        },
    )
    (outcome,) = run_parts([make_part(tmp_path, "serial", suite)], slots=1)
    assert outcome.status == "crashed"
    assert outcome.attempts == 1
    assert by_id(outcome) == {
        "test_last.py::test_ok": "passed",
        "test_last.py::test_dies": "crashed",
    }


THREAD_TIMEOUT = """
    import time

    import pytest

    def test_before():
        pass

    @pytest.mark.timeout(1, method="thread")
    def test_hangs():
        time.sleep(30)

    @pytest.mark.timeout(1, method="thread")
    def test_quick_exit_under_a_timer():
        import os
        os._exit(4)  # a crash, though a thread timer was set: it died before the limit

    def test_after():
        pass
"""


PER_TEST_LIMIT = """
    import time

    def test_slow_but_within():
        time.sleep(2)

    def test_as_slow_after_it():
        time.sleep(2)  # each test's time counts from its own start

    def test_hangs():
        time.sleep(120)

    def test_after():
        pass
"""


def test_a_test_past_its_own_limit_ends_the_part_before_the_parts_limit(tmp_path: Path) -> None:
    # A triage rerun's limit: 60 s for the part (to start and collect), 3 s for each test from
    # its start. The hung test ends 3 s after it started, not 60 s after the process did.
    suite = write_suite(tmp_path / "suite", {"test_hang.py": PER_TEST_LIMIT})
    part = make_part(tmp_path, "rerun-1", suite)
    part = Part(part.name, part.argv, part.env, part.dir, timeout=60, test_timeout=3)
    started = time.monotonic()
    (outcome,) = run_parts([part], slots=1)
    assert time.monotonic() - started < 30, "the part's 60 s limit ended it, not the test's"
    assert outcome.status is RunStatus.TIMEOUT
    assert by_id(outcome) == {
        "test_hang.py::test_slow_but_within": "passed",
        "test_hang.py::test_as_slow_after_it": "passed",
        "test_hang.py::test_hangs": "timeout",
    }
    assert outcome.unfinished == "test_hang.py::test_hangs ran past the limit of 3 s a test"
    hung = next(r for r in results(outcome) if r["outcome"] == "timeout")
    assert "ended when test_hang.py::test_hangs ran past the limit of 3 s a test" in str(
        hung["longrepr"]
    )
    assert "1 test(s) after it did not run" in str(hung["longrepr"])


@pytest.mark.parametrize("passthrough", [False, True], ids=["log", "passthrough"])
def test_the_thread_timeout_method_is_a_timeout_not_a_crash(
    tmp_path: Path, passthrough: bool
) -> None:
    # The thread method ends the whole process with os._exit(1): no report, and a passthrough
    # part has no log to read; the timer note tells the engine what happened.
    suite = write_suite(tmp_path / "suite", {"test_hang.py": THREAD_TIMEOUT})
    part = make_part(tmp_path, "serial", suite)
    part = Part(part.name, part.argv, part.env, part.dir, passthrough=passthrough)
    (outcome,) = run_parts([part], slots=1)
    assert by_id(outcome) == {
        "test_hang.py::test_before": "passed",
        "test_hang.py::test_hangs": "timeout",
        "test_hang.py::test_quick_exit_under_a_timer": "crashed",
        "test_hang.py::test_after": "passed",
    }
    assert outcome.timed_out == ["test_hang.py::test_hangs"]
    assert outcome.crashed == ["test_hang.py::test_quick_exit_under_a_timer"]
    assert outcome.attempts == 3
    hung = next(r for r in results(outcome) if r["outcome"] == "timeout")
    assert "Timeout (>1s) from pytest-timeout (thread method)" in str(hung["longrepr"])
    if not passthrough:  # the stacks it printed are quoted, and where it hung is known
        assert "Stack of MainThread" in str(hung["longrepr"])
        assert ["test_hang.py", 11] in [[Path(str(p)).name, n] for p, n in hung["frames"]]  # type: ignore[attr-defined]


def test_a_thread_timeout_in_an_xdist_worker_is_a_timeout(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", {"test_hang.py": THREAD_TIMEOUT})
    (outcome,) = run_parts([make_part(tmp_path, "xdist", suite, "-n", "2")], slots=1)
    found = by_id(outcome)
    assert found["test_hang.py::test_hangs"] == "timeout", log(outcome)
    assert found["test_hang.py::test_quick_exit_under_a_timer"] == "crashed"
    assert len(found) == 4  # xdist replaced its dead workers and ran the rest


TIMED = """
    import os, time
    from pathlib import Path

    def test_timed():
        record = Path(os.environ["RECORD_DIR"]) / os.environ["NOXLIB_PART_NAME"]
        start = time.time()
        time.sleep(0.3)
        record.write_text(f"{start} {time.time()}")
"""


def running_pytests(suite: Path) -> int:
    """How many child processes of this one are pytest runs over ``suite``."""
    count = 0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            count += str(suite) in child.cmdline()
    return count


@pytest.mark.parametrize(("slots", "count"), [(1, 2), (2, 3)])
def test_never_more_processes_than_slots(tmp_path: Path, slots: int, count: int) -> None:
    """slots=1 runs the parts one after the other; slots=2 runs two at a time, not three."""
    suite = write_suite(tmp_path / "suite", {"test_timed.py": TIMED})
    record = tmp_path / "record"
    record.mkdir()
    parts = [
        make_part(tmp_path, f"part-{k}", suite, env={"RECORD_DIR": str(record)})
        for k in range(count)
    ]
    seen: list[int] = []
    outcomes = run_parts(
        parts, slots=slots, tick=lambda elapsed: seen.append(running_pytests(suite))
    )
    assert [o.status for o in outcomes] == ["passed"] * count, [log(o) for o in outcomes]
    assert max(seen) == slots
    spans = sorted(tuple(map(float, p.read_text().split())) for p in record.iterdir())
    assert len(spans) == count
    if slots == 1:
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, spans  # the next part's test began after this one ended


def test_a_part_that_fails_at_startup_is_an_error_and_the_others_run(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", {"test_ok.py": "def test_ok():\n    pass\n"})
    broken = make_part(tmp_path, "broken", suite, "--no-such-option")
    good = make_part(tmp_path, "good", suite)
    outcomes = run_parts([broken, good], slots=1)
    assert outcomes[0].status == "error"
    assert outcomes[0].exit_code == 4
    assert outcomes[0].attempts == 1
    assert outcomes[0].problem == (
        f"pytest exited with code 4 before it started its tests; see {broken.files.log}"
    )
    assert "unrecognized arguments: --no-such-option" in log(outcomes[0])
    assert outcomes[1].status == "passed", log(outcomes[1])
    assert by_id(outcomes[1]) == {"test_ok.py::test_ok": "passed"}


def test_a_shard_answers_worker_id_as_an_xdist_worker_would(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "suite",
        {
            "test_identity.py": """
                import os

                def test_worker_id(worker_id):
                    assert worker_id == os.environ["PYTEST_XDIST_WORKER"] == "gw1"

                def test_testrun_uid(testrun_uid):
                    assert testrun_uid == os.environ["NOXLIB_RUN_ID"] == "engine-test"
            """
        },
    )
    part = make_part(tmp_path, "shard-2", suite, env={"PYTEST_XDIST_WORKER": "gw1"})
    (outcome,) = run_parts([part], slots=1)
    assert by_id(outcome) == {
        "test_identity.py::test_worker_id": "passed",
        "test_identity.py::test_testrun_uid": "passed",
    }, log(outcome)
    assert outcome.status == "passed"


def test_the_engine_learns_of_an_end_when_it_happens() -> None:
    """A wait of up to a minute returns once a running part's process exits: the engine does
    not learn of it only at its next poll."""
    from types import SimpleNamespace

    from noxlib.engine import _wait_for_an_end

    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        started = time.monotonic()
        _wait_for_an_end([SimpleNamespace(popen=slow), SimpleNamespace(popen=quick)], 60.0)  # type: ignore[list-item]
        assert time.monotonic() - started < 30
        assert quick.poll() is not None
    finally:
        slow.kill()
        slow.wait()
        quick.wait()


def test_each_outcome_is_recorded_as_pytest_gives_it(tmp_path: Path) -> None:
    """Every kind of outcome reaches results.jsonl as pytest reports it, with its duration,
    and only failures carry pytest's text of them."""
    suite = write_suite(
        tmp_path / "suite",
        {
            "test_kinds.py": """
                import pytest

                def test_pass():
                    pass

                def test_skip():
                    pytest.skip("not here")

                @pytest.mark.xfail(strict=False)
                def test_xfail():
                    assert False

                @pytest.mark.xfail(strict=False)
                def test_xpass():
                    pass

                def test_fail():
                    assert 1 == 2

                @pytest.fixture
                def broken():
                    raise RuntimeError("no fixture")

                def test_error(broken):
                    pass

                @pytest.fixture
                def bad_teardown():
                    yield
                    raise RuntimeError("teardown")

                def test_teardown_error(bad_teardown):
                    pass
            """
        },
    )
    (outcome,) = run_parts([make_part(tmp_path, "serial", suite)], slots=1)
    assert by_id(outcome) == {
        "test_kinds.py::test_pass": "passed",
        "test_kinds.py::test_skip": "skipped",
        "test_kinds.py::test_xfail": "xfailed",
        "test_kinds.py::test_xpass": "xpassed",
        "test_kinds.py::test_fail": "failed",
        "test_kinds.py::test_error": "error",
        "test_kinds.py::test_teardown_error": "error",
    }
    for line in results(outcome):
        assert isinstance(line["duration"], float)
        assert line["duration"] > 0  # setup, call and teardown each take some time
        assert line["worker"] == "serial"
        assert ("longrepr" in line) == (line["outcome"] in ("failed", "error")), line


KILLS_ALL_OF_PYTEST = """
    import os, signal
    from pathlib import Path

    RECORD = Path(os.environ["RECORD_DIR"])

    def _note(name):
        with (RECORD / "ran.txt").open("a") as out:
            out.write(name + "\\n")

    def test_a():
        _note("a")

    def test_kills_pytest():
        _note("kill")
        marker = RECORD / "killed"
        if os.environ.get("KILL_ONCE") and marker.exists():
            return
        marker.write_text("yes")
        if os.environ.get("PYTEST_XDIST_WORKER"):
            os.kill(os.getppid(), signal.SIGKILL)  # the xdist controller, then this worker
        os.kill(os.getpid(), signal.SIGKILL)

    def test_z():
        _note("z")
"""


def killed_xdist_part(tmp_path: Path, **extra: str) -> tuple[PartOutcome, list[str]]:
    suite = write_suite(tmp_path / "suite", {"test_k.py": KILLS_ALL_OF_PYTEST})
    record = tmp_path / "record"
    record.mkdir()
    env = {"RECORD_DIR": str(record), **extra}
    (outcome,) = run_parts([make_part(tmp_path, "xdist", suite, "-n", "1", env=env)], slots=1)
    return outcome, sorted((record / "ran.txt").read_text().split())


def test_a_dead_xdist_controller_blames_no_test_and_a_serial_rerun_names_the_killer(
    tmp_path: Path,
) -> None:
    outcome, ran = killed_xdist_part(tmp_path)
    found = by_id(outcome)  # one result per test: nothing ran twice to the end
    assert found == {
        "test_k.py::test_a": "passed",
        "test_k.py::test_kills_pytest": "crashed",  # named by the serial process it killed
        "test_k.py::test_z": "passed",
    }, log(outcome)
    assert outcome.crashed == ["test_k.py::test_kills_pytest"]
    # test_a passed before the first death: only what was left ran again.
    assert ran == ["a", "kill", "kill", "z"]
    assert outcome.attempts == 3


def test_a_test_that_killed_the_xdist_controller_once_passes_but_the_part_is_crashed(
    tmp_path: Path,
) -> None:
    outcome, ran = killed_xdist_part(tmp_path, KILL_ONCE="1")
    assert set(by_id(outcome).values()) == {"passed"}  # no test is blamed by a guess
    assert outcome.status is RunStatus.CRASHED
    assert "its xdist controller died with SIGKILL while its workers ran" in outcome.problem
    assert ran == ["a", "kill", "kill", "z"]


DIES_BETWEEN_TESTS = {
    "conftest.py": """
        import os
        from pathlib import Path

        def pytest_runtest_logfinish(nodeid):
            # After test_a's result is written, before test_b begins: no test to blame.
            marker = Path(os.environ["RECORD_DIR"]) / "died"
            if nodeid.endswith("test_a") and not marker.exists():
                marker.write_text("once")
                os._exit(3)
    """,
    "test_d.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n",
}


def test_a_death_between_two_tests_leaves_the_part_crashed_though_every_test_passed(
    tmp_path: Path,
) -> None:
    suite = write_suite(tmp_path / "suite", DIES_BETWEEN_TESTS)
    record = tmp_path / "record"
    record.mkdir()
    part = make_part(tmp_path, "serial", suite, env={"RECORD_DIR": str(record)})
    (outcome,) = run_parts([part], slots=1)
    assert by_id(outcome) == {"test_d.py::test_a": "passed", "test_d.py::test_b": "passed"}
    assert outcome.attempts == 2
    assert outcome.status is RunStatus.CRASHED
    assert outcome.problem == "pytest exited with code 3 between two tests"


def test_a_file_that_no_shard_takes_is_named_by_the_books(tmp_path: Path) -> None:
    # Two real shards by file whose plans (written by hand, deliberately wrong) both leave
    # test_b.py to the other: no id of it is known anywhere, and the books still name it.
    from noxlib.books import balance
    from noxlib.byfile import ShardFiles
    from noxlib.merge import part_source
    from noxlib.parts import SHARD_FILES_ENV, ShardSpec

    files = {name: "def test_one():\n    pass\n" for name in ("test_a.py", "test_b.py")}
    files["test_c.py"] = "def test_one():\n    pass\n"
    suite = write_suite(tmp_path / "suite", files)
    known = frozenset(files)
    parts = []
    for index, own in ((1, {"test_a.py"}), (2, {"test_c.py"})):
        plan = ShardFiles(frozenset(own), known, (ShardSpec(index, 2),), ("plan",))
        plan.write(tmp_path / f"files-{index}.json")
        env = {SHARD_FILES_ENV: str(tmp_path / f"files-{index}.json")}
        parts.append(make_part(tmp_path, f"shard-{index}", suite, env=env))
    outcomes = run_parts(parts, slots=2)
    assert [sorted(by_id(o)) for o in outcomes] == [
        ["test_a.py::test_one"],
        ["test_c.py::test_one"],
    ]
    books = balance(part_source(o.part.name, o.part.files) for o in outcomes)
    assert books.never_collected == [("test_b.py", "shard-1")]
    assert "1 file collected by no shard (each shard pytest asked about it left" in books.line()
