"""One JUnit XML for a run: one testcase per result of its books, pytest's own case where a
part's file holds it with the test's final outcome (checked against a real pytest's JUnit
file), a case made from the result where none does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from noxlib.books import Source, balance
from noxlib.junit import junit_address, merge_junit
from tests.conftest import nox_env

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
    """One case per result: the file's where a file holds it with the same outcome, once; a
    case made from each result no file holds (a crash, the tests of a process that died before
    writing its file, a collection error); counts that add up."""
    (tmp_path / "junit-1.xml").write_text(JUNIT_A)
    (tmp_path / "junit.xml").write_text(JUNIT_B)
    (tmp_path / "garbled.xml").write_text("<testsuites><testcase")
    results = [
        {"nodeid": "tests/test_a.py::test_one", "outcome": "passed", "duration": 0.25},
        {"nodeid": "tests/test_a.py::TestK::test_two[1]", "outcome": "passed", "duration": 0.25},
        {
            "nodeid": "tests/test_a.py::test_bad",
            "outcome": "failed",
            "duration": 1.0,
            "longrepr": "the result's own text",
        },
        {"nodeid": "tests/test_b.py::test_skip", "outcome": "skipped", "duration": 0},
        {"nodeid": "tests/test_b.py::test_err", "outcome": "error", "duration": 2.0},
        crashed("tests/test_c.py::TestDead::test_boom[x-1]"),
        {
            "nodeid": "tests/test_c.py::test_failed_before_the_crash",
            "outcome": "failed",
            "duration": 0.5,
            "longrepr": "assert 'a' == 'b' & <tag>",
        },
        {"nodeid": "tests/test_c.py::test_skipped_before", "outcome": "skipped", "duration": 0},
        {"nodeid": "tests/test_c.py::test_passed_before", "outcome": "passed", "duration": 1.25},
        {
            "nodeid": "tests/test_bad.py",
            "outcome": "error",
            "when": "collect",
            "duration": 0,
            "longrepr": "ImportError: No module named 'gone'",
        },
    ]
    out = tmp_path / "reports" / "junit.xml"
    files = [tmp_path / "junit-1.xml", tmp_path / "junit.xml", tmp_path / "garbled.xml"]
    assert merge_junit([*files, tmp_path / "missing.xml"], results, out) == 10

    root = ET.parse(out).getroot()  # valid XML
    assert root.tag == "testsuites"
    (suite,) = list(root)
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 10  # the cases of the files are not made again from their results
    assert suite.attrib == {
        "name": "pytest",
        "tests": "10",
        "failures": "2",
        "errors": "3",
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
    kept = cases[("tests.test_a", "test_bad")].find("failure")  # as pytest wrote it
    assert kept is not None
    assert kept.text == "def test_bad(): assert 1 == 2"
    # The collection error is the file's case, at the address pytest gives a file.
    assert ("tests", "test_bad") not in cases
    collect = cases[("", "tests.test_bad")].find("error")
    assert collect is not None
    assert collect.text == "ImportError: No module named 'gone'"


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


# --- the run's books in its JUnit file ------------------------------------------------------------

# A collection error as pytest writes it in the JUnit file of every part that collects the file.
COLLECT_ERROR = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="2" time="0.1">
<testcase classname="" name="tests.test_bad" time="0.000">
<error message="collection failure">ImportError: No module named 'gone'</error></testcase>
<testcase classname="tests.test_{k}" name="test_ok" time="0.050" />
</testsuite></testsuites>
"""


def suite_of(path: Path) -> tuple[ET.Element, list[ET.Element]]:
    (suite,) = list(ET.parse(path).getroot())
    return suite, list(suite.iter("testcase"))


def test_a_collection_error_in_two_part_files_is_one_case(tmp_path: Path) -> None:
    """Both shards collect the broken file and report its error: the books count it once, and so
    does the JUnit file."""
    error = {"nodeid": "tests/test_bad.py", "outcome": "error", "when": "collect", "duration": 0}
    sources = []
    files = []
    for k in (1, 2):
        ok = {"nodeid": f"tests/test_{k}.py::test_ok", "outcome": "passed", "duration": 0.05}
        sources.append(Source(f"shard-{k}", [str(ok["nodeid"])], [error, ok]))
        files.append(tmp_path / f"junit-{k}.xml")
        files[-1].write_text(COLLECT_ERROR.replace("{k}", str(k)))
    books = balance(sources)
    out = tmp_path / "junit.xml"
    assert merge_junit(files, books.results, out) == 3
    suite, cases = suite_of(out)
    assert suite.get("errors") == "1"
    assert suite.get("tests") == "3"
    assert [(c.get("classname"), c.get("name")) for c in cases].count(("", "tests.test_bad")) == 1


PASSED_CASE = """<testsuites><testsuite name="pytest" tests="1">
<testcase classname="tests.test_a" name="test_x" time="0.100" />
</testsuite></testsuites>
"""
FAILED_CASE = """<testsuites><testsuite name="pytest" tests="1">
<testcase classname="tests.test_a" name="test_x" time="0.200">
<failure message="assert 0">the second part's failure</failure></testcase>
</testsuite></testsuites>
"""


@pytest.mark.parametrize("order", ["passed first", "failed first"])
def test_a_conflict_keeps_the_case_of_the_final_outcome(tmp_path: Path, order: str) -> None:
    """Two parts ran one test, and disagree: the books keep the failure, and the JUnit file
    keeps the part's case that failed, whichever file comes first."""
    (tmp_path / "a.xml").write_text(PASSED_CASE)
    (tmp_path / "b.xml").write_text(FAILED_CASE)
    nodeid = "tests/test_a.py::test_x"
    passed = Source("shard-1", [nodeid], [{"nodeid": nodeid, "outcome": "passed"}])
    failed = Source("shard-2", [nodeid], [{"nodeid": nodeid, "outcome": "failed"}])
    files = [tmp_path / "a.xml", tmp_path / "b.xml"]
    if order == "failed first":
        passed, failed = failed, passed
        files.reverse()
    books = balance([passed, failed])
    assert [r["outcome"] for r in books.results] == ["failed"]
    out = tmp_path / "junit.xml"
    assert merge_junit(files, books.results, out) == 1
    suite, (case,) = suite_of(out)
    failure = case.find("failure")
    assert failure is not None
    assert failure.text == "the second part's failure"
    assert case.get("time") == "0.200"
    assert suite.get("failures") == "1"


def test_a_test_that_never_ran_is_an_error(tmp_path: Path) -> None:
    """A not-run result is an <error> that gives the reason, even where a part's file holds a
    passing case for the test (a file left by an earlier attempt)."""
    nodeid = "tests/test_a.py::test_x"
    source = Source("shard-1", [nodeid], [], unfinished="its time limit of 60 s")
    books = balance([source])
    (tmp_path / "a.xml").write_text(PASSED_CASE)
    out = tmp_path / "junit.xml"
    assert merge_junit([tmp_path / "a.xml"], books.results, out) == 1
    suite, (case,) = suite_of(out)
    assert (case.get("classname"), case.get("name")) == ("tests.test_a", "test_x")
    error = case.find("error")
    assert error is not None
    assert error.get("type") == "not-run"
    assert error.get("message") == "not-run: Never ran: its time limit of 60 s."
    assert suite.get("errors") == "1"
    assert suite.get("failures") == "0"


# --- the addresses pytest gives -------------------------------------------------------------------

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
# A duration no test of SUITE takes: a case made from a result has it, pytest's own never.
MADE = 99.0


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


def made_cases(path: Path) -> list[str | None]:
    return [c.get("name") for c in suite_of(path)[1] if c.get("time") == f"{MADE:.3f}"]


def test_merge_junit_finds_every_case_of_pytests_own_file(
    pytest_junit: tuple[dict[str, tuple[str, str]], Path], tmp_path: Path
) -> None:
    """Results of tests that pytest's file holds add no case: each is found by its address."""
    addresses, junit = pytest_junit
    results = [
        {"nodeid": n, "outcome": "passed", "duration": MADE} for n in addresses if n != COLONS
    ]
    assert merge_junit([junit], results, tmp_path / "merged.xml") == 9
    assert made_cases(tmp_path / "merged.xml") == []


def test_junit_address_matches_pytest_when_a_parameter_holds_colons(
    pytest_junit: tuple[dict[str, tuple[str, str]], Path], tmp_path: Path
) -> None:
    """A parameter id may contain ``::`` (an IPv6 address, a node id); pytest keeps it whole in
    the name, and the merged file must not count that test twice."""
    addresses, junit = pytest_junit
    assert addresses[COLONS] == ("tests.b.test_hosts", "test_connect[::1]")
    assert junit_address(COLONS) == addresses[COLONS]
    results = [{"nodeid": COLONS, "outcome": "passed", "duration": MADE}]
    assert merge_junit([junit], results, tmp_path / "merged.xml") == 1
    assert made_cases(tmp_path / "merged.xml") == []
