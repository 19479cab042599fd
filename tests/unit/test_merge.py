"""Parts and CI shards merged into one run: results, JUnit XML (checked against a real pytest's
JUnit file), the set of shards ``combine`` accepts, and the durations file under its lock."""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from noxlib.durations import read_durations, write_durations
from noxlib.errors import UsageError
from noxlib.merge import (
    PartRow,
    RunInfo,
    check_shard_set,
    junit_address,
    measured_durations,
    merge_junit,
    merged_results,
    read_results,
    read_run_info,
    update_durations,
    write_results,
    write_run_info,
)
from tests.conftest import nox_env

# --- results ----------------------------------------------------------------------------------


def test_results_skip_a_torn_line_and_merge_one_per_node_id(tmp_path: Path) -> None:
    """A dead writer's half line is skipped; the collection error every shard reports is one."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    error = {"nodeid": "tests/bad.py", "outcome": "error", "when": "collect"}
    write_results(first, [{"nodeid": "tests/a.py::t", "outcome": "passed"}, error])
    second.write_text(json.dumps(error) + "\n" + '{"nodeid": "tests/b.py::t", "outc')
    assert read_results(second) == [error]
    assert read_results(tmp_path / "missing.jsonl") == []
    merged = merged_results([first, second])
    assert [r["nodeid"] for r in merged] == ["tests/a.py::t", "tests/bad.py"]


def test_measured_durations_leave_out_crashes_and_collection_errors() -> None:
    results = [
        {"nodeid": "tests/a.py::ok", "outcome": "passed", "duration": 0.5},
        {"nodeid": "tests/a.py::slow", "outcome": "timeout", "duration": 30.0},
        {"nodeid": "tests/a.py::dead", "outcome": "crashed", "duration": 0.0},
        {"nodeid": "tests/bad.py", "outcome": "error", "when": "collect", "duration": 0.0},
    ]
    assert measured_durations(results) == {"tests/a.py::ok": 0.5, "tests/a.py::slow": 30.0}


# --- JUnit XML --------------------------------------------------------------------------------

JUNIT_A = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="3" time="1.5">
<testcase classname="tests.test_a" name="test_one" time="0.250" />
<testcase classname="tests.test_a.TestK" name="test_two[1]" time="0.250" />
<testcase classname="tests.test_a" name="test_bad" time="1.000">
<failure message="assert 1 == 2">def test_bad(): assert 1 == 2</failure></testcase>
</testsuite></testsuites>
"""
JUNIT_B = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="1" tests="2" time="2.0">
<testcase classname="tests.test_b" name="test_skip" time="0.000">
<skipped type="pytest.skip" message="no db">no db</skipped></testcase>
<testcase classname="tests.test_b" name="test_err" time="2.000">
<error message="failed on setup">fixture broke</error></testcase>
</testsuite></testsuites>
"""


def crashed(nodeid: str) -> dict[str, object]:
    return {
        "nodeid": nodeid,
        "outcome": "crashed",
        "duration": 0.0,
        "when": "call",
        "longrepr": "The pytest process of part shard-2 exited with code 3 while this test ran",
    }


def test_merge_junit_keeps_every_case_and_makes_the_missing_ones(tmp_path: Path) -> None:
    """Cases of every file, once; a case made from each result no file holds (a crash, the
    tests of a process that died before writing its file); counts that add up."""
    (tmp_path / "junit-1.xml").write_text(JUNIT_A)
    (tmp_path / "junit.xml").write_text(JUNIT_B)
    (tmp_path / "garbled.xml").write_text("<testsuites><testcase")
    results = [
        {"nodeid": "tests/test_a.py::test_one", "outcome": "passed", "duration": 0.25},
        {"nodeid": "tests/test_a.py::TestK::test_two[1]", "outcome": "passed", "duration": 0.25},
        crashed("tests/test_c.py::TestDead::test_boom[x-1]"),
        {
            "nodeid": "tests/test_c.py::test_failed_before_the_crash",
            "outcome": "failed",
            "duration": 0.5,
            "longrepr": "assert 'a' == 'b' & <tag>",
        },
        {"nodeid": "tests/test_c.py::test_skipped_before", "outcome": "skipped", "duration": 0},
        {"nodeid": "tests/test_c.py::test_passed_before", "outcome": "passed", "duration": 1.25},
        {"nodeid": "tests/test_bad.py", "outcome": "error", "when": "collect", "duration": 0},
    ]
    out = tmp_path / "reports" / "junit.xml"
    files = [tmp_path / "junit-1.xml", tmp_path / "junit.xml", tmp_path / "garbled.xml"]
    assert merge_junit([*files, tmp_path / "missing.xml"], results, out) == 9

    root = ET.parse(out).getroot()  # valid XML
    assert root.tag == "testsuites"
    (suite,) = list(root)
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 9  # the cases of the files are not made again from their results
    assert suite.attrib == {
        "name": "pytest",
        "tests": "9",
        "failures": "2",
        "errors": "2",
        "skipped": "2",
        "time": "5.250",
    }
    dead = cases[("tests.test_c.TestDead", "test_boom[x-1]")]
    error = dead.find("error")
    assert error is not None
    assert error.get("message", "").startswith("crashed: The pytest process of part shard-2")
    assert error.text == crashed("")["longrepr"]
    failed = cases[("tests.test_c", "test_failed_before_the_crash")]
    failure = failed.find("failure")
    assert failure is not None
    assert failure.text == "assert 'a' == 'b' & <tag>"
    assert failed.get("time") == "0.500"
    skipped = cases[("tests.test_c", "test_skipped_before")].find("skipped")
    assert skipped is not None
    assert list(cases[("tests.test_c", "test_passed_before")]) == []
    assert ("tests", "test_bad") not in cases  # pytest's own files hold collection errors


def test_merged_junit_is_valid_xml_whatever_a_failure_printed(tmp_path: Path) -> None:
    """A failure text with terminal colours or other control characters (a test of a CLI's
    coloured output) still gives a JUnit file that parses, as pytest's own does."""
    results = [
        {
            "nodeid": "tests/test_cli.py::test_colour",
            "outcome": "failed",
            "duration": 0.1,
            "longrepr": "AssertionError: assert '\x1b[31mred\x1b[0m' == 'red'",
        }
    ]
    out = tmp_path / "junit.xml"
    merge_junit([], results, out)
    (case,) = ET.parse(out).getroot().iter("testcase")
    assert case.find("failure") is not None


# A small suite whose JUnit file pytest itself writes: the addresses noxlib must match.
SUITE = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
        def pytest_collection_modifyitems(config, items):
            path = config.rootpath / "nodeids.txt"
            path.write_text("".join(item.nodeid + "\\n" for item in items))
    """,
    "test_top.py": "def test_top():\n    pass\n",
    "tests/a/test_x.py": """
        import pytest

        def test_f():
            pass

        class TestK:
            @pytest.mark.parametrize("n", [1, 2])
            def test_y(self, n):
                pass

            class TestInner:
                def test_z(self):
                    pass

        @pytest.mark.parametrize("v", ["x/y", "a.py", "c d"])
        def test_p(v):
            pass
    """,
    "tests/b/test_hosts.py": """
        import pytest

        @pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
        def test_connect(host):
            pass
    """,
}
COLONS = "tests/b/test_hosts.py::test_connect[::1]"  # an IPv6 address as a parameter


@pytest.fixture(scope="module")
def pytest_junit(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, tuple[str, str]], Path]:
    """Node id -> (classname, name) as a real pytest run writes them in its JUnit XML, and
    that file."""
    root = tmp_path_factory.mktemp("suite")
    for name, text in SUITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=j.xml"]
    argv += ["-p", "no:hypothesispytest", "-p", "no:benchmark"]  # plugins it does not use
    done = subprocess.run(
        argv, cwd=root, env=nox_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    nodeids = (root / "nodeids.txt").read_text().splitlines()
    cases = list(ET.parse(root / "j.xml").getroot().iter("testcase"))
    assert len(cases) == len(nodeids) == 10
    # pytest writes the cases in run order, which is collection order here.
    pairs = zip(nodeids, cases, strict=True)
    return {n: (c.get("classname", ""), c.get("name", "")) for n, c in pairs}, root / "j.xml"


def test_junit_address_matches_pytest(
    pytest_junit: tuple[dict[str, tuple[str, str]], Path],
) -> None:
    addresses, _ = pytest_junit
    assert addresses["tests/a/test_x.py::TestK::test_y[1]"] == ("tests.a.test_x.TestK", "test_y[1]")
    for nodeid, address in addresses.items():
        if nodeid != COLONS:
            assert junit_address(nodeid) == address, nodeid


def test_merge_junit_finds_every_case_of_pytests_own_file(
    pytest_junit: tuple[dict[str, tuple[str, str]], Path], tmp_path: Path
) -> None:
    """Results of tests that pytest's file holds add no case: each is found by its address."""
    addresses, junit = pytest_junit
    results = [
        {"nodeid": n, "outcome": "passed", "duration": 0.0} for n in addresses if n != COLONS
    ]
    assert merge_junit([junit], results, tmp_path / "merged.xml") == 10


def test_junit_address_matches_pytest_when_a_parameter_holds_colons(
    pytest_junit: tuple[dict[str, tuple[str, str]], Path], tmp_path: Path
) -> None:
    """A parameter id may contain ``::`` (an IPv6 address, a node id); pytest keeps it whole in
    the name, and the merged file must not count that test twice."""
    addresses, junit = pytest_junit
    assert addresses[COLONS] == ("tests.b.test_hosts", "test_connect[::1]")
    assert junit_address(COLONS) == addresses[COLONS]
    results = [{"nodeid": COLONS, "outcome": "passed", "duration": 0.0}]
    assert merge_junit([junit], results, tmp_path / "merged.xml") == 10


# --- the shards of a CI matrix --------------------------------------------------------------------


def info(shard: str | None, plan: str = "p1") -> RunInfo:
    return RunInfo(
        session="ci",
        groups=("unit",),
        shard=shard,
        plan=plan,
        root="/src",
        status="passed",
        wall_seconds=12.5,
        parts=(PartRow("shard-1", "passed", 3, 1.0, 1.2),),
    )


def shard_set(tmp_path: Path, *shards: tuple[str, str | None, str]) -> list[tuple[Path, RunInfo]]:
    """(reports folder, its run.json) for each (folder name, shard, plan), in order."""
    return [(tmp_path / name, info(shard, plan)) for name, shard, plan in shards]


def refusal(infos: list[tuple[Path, RunInfo]]) -> str:
    with pytest.raises(UsageError) as error:
        check_shard_set(infos)
    return str(error.value)


def test_a_complete_set_of_shards_passes(tmp_path: Path) -> None:
    infos = shard_set(tmp_path, ("r3", "3/3", "p"), ("r1", "1/3", "p"), ("r2", "2/3", "p"))
    assert check_shard_set(infos) == 3
    assert check_shard_set(shard_set(tmp_path, ("only", "1/1", "p"))) == 1


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/4", "p"), ("r3", "3/4", "p")))
    assert "Shard(s) 2/4, 4/4 missing: combine got 2 of 4 reports folders" in message


def test_a_shard_given_twice_names_both_folders(tmp_path: Path) -> None:
    infos = shard_set(tmp_path, ("job-a", "2/2", "p"), ("job-c", "1/2", "p"), ("job-b", "2/2", "p"))
    message = refusal(infos)
    assert f"Shard 2/2 is given twice: {tmp_path / 'job-a'}, {tmp_path / 'job-b'}." in message


def test_one_folder_given_twice_is_not_two_shards(tmp_path: Path) -> None:
    """``combine -- r1 r1`` names shard 1/2 twice; it does not pass for a complete set."""
    infos = shard_set(tmp_path, ("r1", "1/2", "p"), ("r1", "1/2", "p"))
    assert "Shard 1/2 is given twice" in refusal(infos)


def test_shards_of_different_plans_are_refused(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/2", "aaaa"), ("r2", "2/2", "bbbb")))
    assert "The shards were planned differently" in message
    for shard, plan in (("1/2", "aaaa"), ("2/2", "bbbb")):  # each shard with its plan
        assert re.search(f"{shard}\\b[^,]*\\b{plan}\\b", message), message


def test_shards_of_matrices_of_different_sizes_are_refused(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/2", "p"), ("r2", "2/3", "p")))
    assert "matrices of different sizes: [2, 3]" in message


def test_an_unsharded_folder_is_refused(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/2", "p"), ("local", None, "p")))
    assert f"Not the reports of a sharded run: {tmp_path / 'local'}." in message
    assert "combine needs the reports folders" in refusal([])


def test_run_info_round_trips_and_a_folder_without_one_is_named(tmp_path: Path) -> None:
    write_run_info(tmp_path / "r1", info("1/2"))
    assert read_run_info(tmp_path / "r1") == info("1/2")
    with pytest.raises(UsageError, match=f"{tmp_path / 'none'} holds no run.json"):
        read_run_info(tmp_path / "none")
    (tmp_path / "r1" / "run.json").write_text('{"session": "ci"}')
    with pytest.raises(UsageError, match="is not a noxlib run description"):
        read_run_info(tmp_path / "r1")


# --- the durations file -----------------------------------------------------------------------


def test_update_durations_replaces_a_garbled_file(tmp_path: Path) -> None:
    """A garbled file is replaced by what the run measured; the next read works."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    path = tmp_path / ".test_durations"
    path.write_text('{"tests/test_a.py::t": ')
    results = [
        {"nodeid": "tests/test_a.py::t", "outcome": "passed", "duration": 0.5},
        {"nodeid": "tests/test_a.py::u", "outcome": "failed", "duration": 1.5},
        crashed("tests/test_a.py::v"),
    ]
    assert update_durations(path, results, root=tmp_path) == 2
    assert read_durations(path) == {"tests/test_a.py::t": 0.5, "tests/test_a.py::u": 1.5}


def test_update_durations_forgets_tests_that_are_gone(tmp_path: Path) -> None:
    """Ids of deleted files, and ids no longer in a file collected whole, are dropped; other
    files' ids are kept."""
    for name in ("test_a.py", "test_other.py"):
        (tmp_path / "tests").mkdir(exist_ok=True)
        (tmp_path / "tests" / name).write_text("")
    path = tmp_path / ".test_durations"
    old = {
        "tests/test_a.py::t": 9.0,
        "tests/test_a.py::removed": 9.0,
        "tests/test_other.py::t": 3.0,
        "tests/test_deleted.py::t": 3.0,
    }
    write_durations(path, old)
    results = [{"nodeid": "tests/test_a.py::t", "outcome": "passed", "duration": 0.5}]
    size = update_durations(
        path,
        results,
        collected_ids=["tests/test_a.py::t"],
        whole_files=["tests/test_a.py"],
        root=tmp_path,
    )
    assert size == 2
    assert read_durations(path) == {"tests/test_a.py::t": 0.5, "tests/test_other.py::t": 3.0}


def test_update_durations_waits_for_the_lock(tmp_path: Path) -> None:
    """While another run holds the lock, the update waits; then it writes its figures."""
    path = tmp_path / ".test_durations"
    path.write_text("garbled")
    results = [{"nodeid": "tests/test_a.py::t", "outcome": "passed", "duration": 0.5}]
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    # Another run's update holds the lock file beside the durations file.
    with (tmp_path / f".{path.name.lstrip('.')}.lock").open("a+b") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        worker = threading.Thread(
            target=update_durations, args=(path, results), kwargs={"root": tmp_path}
        )
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive()
        assert path.read_text() == "garbled"
        fcntl.flock(other, fcntl.LOCK_UN)
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert read_durations(path) == {"tests/test_a.py::t": 0.5}
