"""Green means green, under real nox: each way a run could report success while a test failed,
ran twice or never ran, and what noxlib says now.

Each test writes a small project, runs the real nox on it, and reads back what a user reads:
the exit status, the log, reports/results.jsonl and reports/junit.xml.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PLAIN_PYPROJECT, nox_env, run_nox

MakeProject = Callable[..., Path]


def outcomes(project: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (project / "reports" / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert record["nodeid"] not in found, f"{record['nodeid']} is reported twice"
        found[record["nodeid"]] = record["outcome"]
    return found


def durations(project: Path, ids: list[str]) -> None:
    (project / ".test_durations").write_text(json.dumps(dict.fromkeys(ids, 0.1)))


FILE_GROUP = """
[tool.noxlib]
install = []
triage = false
engine = "shards"

[tool.noxlib.groups.unit]
paths = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py", "tests/test_d.py"]
"""


def test_a_group_that_names_files_still_runs_each_test_in_one_shard(
    make_project: MakeProject,
) -> None:
    # pytest never asks pytest_ignore_collect about the paths on its command line: every shard
    # collected every named file, and every test ran in both shards.
    files = {f"tests/test_{x}.py": f"def test_{x}():\n    pass\n" for x in "abcd"}
    project = make_project(FILE_GROUP, files)
    durations(project, [f"tests/test_{x}.py::test_{x}" for x in "abcd"])
    result = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert result.returncode == 0, result.stdout
    assert "shards collect only their own files" in result.stdout
    assert "every collected test ran once (4 tests)" in result.stdout
    assert outcomes(project) == {f"tests/test_{x}.py::test_{x}": "passed" for x in "abcd"}


DOCTESTS = """
[tool.noxlib]
install = []
triage = false
engine = "shards"

[tool.noxlib.groups.unit]
paths = ["pkg"]
"""


def test_doctests_of_init_and_conftest_run_in_one_shard(make_project: MakeProject) -> None:
    files = {
        "pkg/__init__.py": '"""\n>>> 1 + 1\n2\n"""\n',
        "pkg/conftest.py": '"""\n>>> 2 + 2\n4\n"""\n',
        "pkg/test_a.py": "def test_a():\n    pass\n",
        "pkg/test_b.py": "def test_b():\n    pass\n",
    }
    project = make_project(DOCTESTS, files)
    durations(project, ["pkg/test_a.py::test_a", "pkg/test_b.py::test_b"])
    args = ("-s", "tests-parallel", "--", "--doctest-modules")
    result = run_nox(project, *args, env=nox_env(PYTEST_WORKERS="2"))
    assert result.returncode == 0, result.stdout
    assert "shards collect only their own files" in result.stdout
    assert "every collected test ran once (4 tests)" in result.stdout
    assert sorted(outcomes(project)) == [
        "pkg/__init__.py::pkg",
        "pkg/conftest.py::pkg.conftest",
        "pkg/test_a.py::test_a",
        "pkg/test_b.py::test_b",
    ]


SERIAL = PLAIN_PYPROJECT

REORDERED = {
    "tests/test_a.py": "def test_1():\n    pass\n\n\ndef test_2():\n    pass\n",
    "tests/test_b.py": "import os\n\n\ndef test_3():\n    os._exit(3)\n",
}


def test_a_crash_after_nf_reordered_the_tests_names_the_test_that_ran(
    make_project: MakeProject,
) -> None:
    # --nf (like --ff, --lf and --sw) reorders the items after every other plugin: the newest
    # file, test_b.py, runs first, and its test kills the process at once.
    project = make_project(SERIAL, REORDERED)
    os.utime(project / "tests" / "test_a.py", (1_000_000_000, 1_000_000_000))
    result = run_nox(project, "-s", "tests", "--", "--nf")
    assert result.returncode != 0, result.stdout
    assert outcomes(project) == {
        "tests/test_a.py::test_1": "passed",
        "tests/test_a.py::test_2": "passed",
        "tests/test_b.py::test_3": "crashed",
    }
    assert "every collected test ran once (3 tests)" in result.stdout


CAPPED = {
    "tests/test_crash.py": "".join(
        f"def test_dies_{n:02d}():\n    import os\n    os._exit(3)\n\n\n" for n in range(7)
    ),
    "tests/test_z.py": "def test_real_failure():\n    assert 1 == 2\n",
}


def test_the_rest_of_a_part_after_the_relaunch_cap_is_not_run_and_said(
    make_project: MakeProject,
) -> None:
    # The cap is 50 processes unless set; 5 here, so the test starts 5 processes, not 50.
    project = make_project(
        SERIAL.replace("triage = false", "triage = false\nrelaunch-cap = 5"), CAPPED
    )
    result = run_nox(project, "-s", "tests")
    assert result.returncode != 0
    found = outcomes(project)
    assert list(found.values()).count("crashed") == 5
    left = sorted(nodeid for nodeid, outcome in found.items() if outcome == "not-run")
    assert left == [
        "tests/test_crash.py::test_dies_05",
        "tests/test_crash.py::test_dies_06",
        "tests/test_z.py::test_real_failure",
    ]
    assert "3 tests never ran (the relaunch cap: its part's pytest died 5 times, the cap is 5" in (
        result.stdout
    )
    assert "processes (relaunch-cap)" in result.stdout
    assert "tests/test_z.py::test_real_failure" in result.stdout


COLLECTION_ERROR = {
    "tests/test_ok.py": "def test_ok():\n    pass\n\n\ndef test_ok2():\n    pass\n",
    "tests/test_broken.py": "def test_broken(:\n",
}


def test_a_collection_error_seen_by_two_shards_is_one_junit_error(
    make_project: MakeProject,
) -> None:
    project = make_project(
        SERIAL.replace("triage = false", "triage = false\nengine = 'shards'"), COLLECTION_ERROR
    )
    result = run_nox(project, "-s", "ci", env=nox_env(PYTEST_WORKERS="2"))
    assert result.returncode != 0
    suite = ET.parse(project / "reports" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("errors"), suite.get("tests")) == ("1", "3"), result.stdout
    assert outcomes(project)["tests/test_broken.py"] == "error"


QUOTING_TIMEOUT = {
    "tests/test_msg.py": """
        def test_says_timeout():
            assert False, "Timeout >30s"

        def test_says_it_like_pytest_timeout():
            assert False, "Timeout (>2.0s) from pytest-timeout."
    """,
}


def test_an_assertion_that_quotes_a_timeout_is_a_failure(make_project: MakeProject) -> None:
    project = make_project(SERIAL, QUOTING_TIMEOUT)
    result = run_nox(project, "-s", "tests")
    assert result.returncode != 0
    assert set(outcomes(project).values()) == {"failed"}, result.stdout


SEPARATORS = """
[tool.noxlib]
install = []
triage = false
engine = "shards"

[tool.noxlib.groups.unit]
paths = ["tests"]

[tool.pytest.ini_options]
disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true
"""

ODD_IDS = ["a\u2028b", "c\x85d", "e\u2029f", "g\rh", "plain"]


def test_ids_holding_line_separators_each_run_once(make_project: MakeProject) -> None:
    files = {
        "tests/test_odd.py": f"""
            import pytest

            @pytest.mark.parametrize("x", range({len(ODD_IDS)}), ids={ODD_IDS!r})
            def test_odd(x):
                pass
        """
    }
    project = make_project(SEPARATORS, files)
    result = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert result.returncode == 0, result.stdout
    assert "every collected test ran once (5 tests)" in result.stdout
    assert sorted(outcomes(project)) == sorted(f"tests/test_odd.py::test_odd[{i}]" for i in ODD_IDS)


BATCHED = """
[tool.noxlib]
install = []
triage = false

[tool.noxlib.groups.unit]
paths = ["tests"]
batch = "file"
"""

PYTEST_INI = """
[pytest]
python_files = check_*.py
norecursedirs = skipped
"""


def test_file_batches_are_the_files_pytest_collects(make_project: MakeProject) -> None:
    # python_files in pytest.ini (not pyproject.toml), collect_ignore and norecursedirs decide
    # which files are test files; a file batch never names a file pytest would not collect.
    files = {
        "pytest.ini": PYTEST_INI,
        "tests/conftest.py": 'collect_ignore = ["check_ignored.py"]\n',
        "tests/check_one.py": "def test_one():\n    pass\n",
        "tests/check_two.py": "def test_two():\n    pass\n",
        "tests/check_ignored.py": "def test_ignored():\n    assert False\n",
        "tests/skipped/check_deep.py": "def test_deep():\n    assert False\n",
        "tests/test_not_a_test_file.py": "def test_nope():\n    assert False\n",
    }
    project = make_project(BATCHED, files)
    result = run_nox(project, "-s", "tests")
    assert result.returncode == 0, result.stdout
    assert outcomes(project) == {
        "tests/check_one.py::test_one": "passed",
        "tests/check_two.py::test_two": "passed",
    }


OVERLAPPING = """
[tool.noxlib]
install = []
triage = false
default-groups = ["fast", "all"]

[tool.noxlib.groups.fast]
paths = ["tests/test_fast.py"]
batch = "file"

[tool.noxlib.groups.all]
paths = ["tests"]
batch = "file"
"""


def test_batched_groups_with_overlapping_paths_run_each_test_once(
    make_project: MakeProject,
) -> None:
    files = {
        "tests/test_fast.py": "def test_fast():\n    assert False, 'a real failure'\n",
        "tests/test_slow.py": "def test_slow():\n    pass\n",
    }
    project = make_project(OVERLAPPING, files)
    result = run_nox(project, "-s", "tests")
    assert result.returncode != 0
    assert outcomes(project) == {
        "tests/test_fast.py::test_fast": "failed",
        "tests/test_slow.py::test_slow": "passed",
    }
    assert "every collected test ran once (2 tests)" in result.stdout


TOLERANT = """
[tool.noxlib]
install = []
tolerate-flaky = true
triage-reruns = 1

[tool.noxlib.groups.unit]
paths = ["tests"]
batch = "group"
batch-timeout = 6
"""

HANGS_ONCE = {
    "tests/test_a_hang.py": """
        import pathlib, time

        def test_hangs_the_first_time():
            marker = pathlib.Path(__file__).with_name("hung-once")
            if not marker.exists():
                marker.write_text("")
                time.sleep(60)
    """,
    "tests/test_b_real.py": "def test_real_failure():\n    assert 1 == 2\n",
}


def test_tolerate_flaky_never_covers_tests_that_never_ran(make_project: MakeProject) -> None:
    # The batch's time limit ends it in its first test, which then passes when rerun (flaky,
    # tolerable); the real failure after it never ran. That is no pass with warnings.
    project = make_project(TOLERANT, HANGS_ONCE)
    result = run_nox(project, "-s", "tests")
    assert result.returncode != 0, result.stdout
    assert "passed with warnings" not in result.stdout
    found = outcomes(project)
    assert found["tests/test_b_real.py::test_real_failure"] == "not-run"
    assert "its part hit its time limit of 6 s" in result.stdout


DIES_AT_IMPORT = {
    "tests/test_a.py": "def test_a():\n    pass\n",
    "tests/test_b.py": "import os\n\nos._exit(3)\n",
}


def test_a_shard_that_dies_before_choosing_its_tests_fails_the_run(
    make_project: MakeProject,
) -> None:
    shards = TOLERANT.replace('batch = "group"\nbatch-timeout = 6\n', "")
    project = make_project(
        shards.replace("[tool.noxlib]\n", '[tool.noxlib]\nengine = "shards"\n'), DIES_AT_IMPORT
    )
    durations(project, ["tests/test_a.py::test_a", "tests/test_b.py::test_b"])
    result = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert result.returncode != 0, result.stdout
    assert "passed with warnings" not in result.stdout
    assert "never chose its tests (pytest exited with code 3 before it started its tests" in (
        result.stdout
    )
