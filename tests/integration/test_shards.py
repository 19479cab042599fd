"""Shards under real nox: a crash costs one test, and a CI matrix merges into one run.

Every test runs the real nox on copies of tests/projects/basic (or a project written here), so
venvs, pytest processes and coverage are real; JUnit, counts and coverage are read back from the
files a user would read.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import nox_env, run_nox

BASIC = Path(__file__).parents[1] / "projects" / "basic"

CRASH_PYPROJECT = """
[tool.noxlib]
install = []
engine = "shards"
keep-together = "module"

[tool.noxlib.groups.unit]
paths = ["tests"]
"""

CRASH_TESTS = {
    "tests/test_a.py": """
        import os

        def test_a1():
            pass

        def test_a2_dies():
            os._exit(3)

        def test_a3():
            pass

        def test_a4():
            pass
    """,
}


def test_a_dead_shard_process_costs_one_crashed_test(make_project: object) -> None:
    project = make_project(CRASH_PYPROJECT, CRASH_TESTS)  # type: ignore[operator]
    # keep-together by module: the four tests share one shard, so the crash hits its mates.
    (project / "tests" / "test_b.py").write_text("def test_b():\n    pass\n")
    result = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert result.returncode != 0, result.stdout
    assert "its pytest process died while running tests/test_a.py::test_a2_dies" in result.stdout
    assert "CRASHED tests/test_a.py::test_a2_dies" in result.stdout
    line = json.loads((project / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1])
    assert line["counts"]["crashed"] == 1
    assert line["counts"]["passed"] == 4  # a1 before the crash, a3 and a4 after it, and b
    crashed = [p for p in line["parts"] if p["status"] == "crashed"]
    assert len(crashed) == 1
    assert crashed[0]["attempts"] == 2  # a new process ran the rest of the shard
    results = (project / "reports" / "results.jsonl").read_text()
    assert '"outcome": "crashed"' in results


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One unsharded `nox -s ci` and three clones that each run one shard of three."""
    base = tmp_path_factory.mktemp("matrix")
    projects = {}
    for name in ("whole", "shard1", "shard2", "shard3", "combiner"):
        projects[name] = Path(shutil.copytree(BASIC, base / name))
    whole = run_nox(projects["whole"], "-s", "ci", "--", "unit", "other")
    assert whole.returncode == 0, whole.stdout
    for k in (1, 2, 3):
        env = nox_env(NOXLIB_SHARD=f"{k}/3")
        shard = run_nox(projects[f"shard{k}"], "-s", "ci", "--", "unit", "other", env=env)
        assert shard.returncode == 0, shard.stdout
        assert f"CI shard {k}/3" in shard.stdout
    return projects


def junit_cases(reports: Path) -> list[tuple[str, str, str]]:
    """(classname, name, outcome) of every testcase in a JUnit file."""
    found = []
    for case in ET.parse(reports / "junit.xml").getroot().iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "ok")
        found.append((case.get("classname", ""), case.get("name", ""), outcome))
    return sorted(found)


def total_coverage(reports: Path) -> str:
    return ET.parse(reports / "coverage.xml").getroot().get("line-rate", "")


def counts(reports: Path) -> dict[str, int]:
    line = json.loads((reports / "ci_timings.jsonl").read_text().splitlines()[-1])
    result: dict[str, int] = line["counts"]
    return result


def test_each_shard_runs_a_share_and_together_they_run_everything(
    matrix: dict[str, Path],
) -> None:
    shares = [junit_cases(matrix[f"shard{k}"] / "reports") for k in (1, 2, 3)]
    assert all(shares), "a shard was left empty"
    every = sorted(case for share in shares for case in share)
    assert every == junit_cases(matrix["whole"] / "reports")  # each test once, none missing


def test_combine_of_three_shards_equals_one_unsharded_run(matrix: dict[str, Path]) -> None:
    folders = [str(matrix[f"shard{k}"] / "reports") for k in (1, 2, 3)]
    # As the CI examples run it: the merged durations go to the durations file for the cache.
    result = run_nox(matrix["combiner"], "-s", "combine", "--", "--store-durations", *folders)
    assert result.returncode == 0, result.stdout
    merged, whole = matrix["combiner"] / "reports", matrix["whole"] / "reports"
    assert junit_cases(merged) == junit_cases(whole)
    assert counts(merged) == counts(whole)
    assert counts(merged)["passed"] == 8
    assert total_coverage(merged) == total_coverage(whole)
    assert (merged / "htmlcov" / "index.html").is_file()
    text = (merged / "ci_timings.md").read_text()
    for k in (1, 2, 3):
        assert f"| shard {k}/3 | passed |" in text
    durations = json.loads((matrix["combiner"] / ".test_durations").read_text())
    assert len(durations) == 8


def test_combine_refuses_a_partial_set_and_names_the_missing_shard(
    matrix: dict[str, Path], tmp_path: Path
) -> None:
    project = Path(shutil.copytree(BASIC, tmp_path / "partial"))
    folders = [str(matrix[f"shard{k}"] / "reports") for k in (1, 3)]
    result = run_nox(project, "-s", "combine", "--", *folders)
    assert result.returncode != 0
    assert "Shard(s) 2/3 missing: combine got 2 of 3 reports folders" in result.stdout
    assert not (project / "reports" / "junit.xml").exists()  # nothing half-merged
    twice = [str(matrix["shard1"] / "reports")] * 2 + [str(matrix["shard2"] / "reports")]
    result = run_nox(project, "-s", "combine", "--", *twice)
    assert "Shard 1/3 is given twice" in result.stdout


SHARED_PYPROJECT = """
[tool.noxlib]
install = []
engine = "shards"

[tool.noxlib.groups.unit]
paths = ["tests"]
"""

SHARED_TESTS = {
    "tests/conftest.py": """
        import os, pathlib, sys, time
        import pytest

        SERVER = (
            "import socket, sys\\n"
            "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\\n"
            "while True:\\n"
            "    s.accept()[0].close()\\n"
        )

        def meet(me, server):
            # Both shards hold the server at once: a server is shared while it has users.
            record = pathlib.Path(os.environ["RECORD"])
            (record / f"{me}-{server.pid}").write_text("")
            deadline = time.monotonic() + 60
            while len(list(record.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)

        @pytest.fixture(scope="session")
        def shared_server(noxlib_servers):
            argv = [sys.executable, "-c", SERVER, "{port}"]
            return noxlib_servers.start("echo", argv, shared=True)
    """,
    "tests/test_one.py": """
        from conftest import meet

        def test_one(shared_server):
            meet("one", shared_server)
    """,
    "tests/test_two.py": """
        from conftest import meet

        def test_two(shared_server):
            meet("two", shared_server)
    """,
}


def test_a_shared_server_is_shared_by_the_shards_of_a_run(
    make_project: object, tmp_path: Path
) -> None:
    project = make_project(SHARED_PYPROJECT, SHARED_TESTS)  # type: ignore[operator]
    record = tmp_path / "record"
    record.mkdir()
    env = nox_env(PYTEST_WORKERS="2", RECORD=str(record))
    result = run_nox(project, "-s", "tests-parallel", env=env)
    assert result.returncode == 0, result.stdout
    assert "| shard-1 | passed | 1 |" in (project / "reports" / "ci_timings.md").read_text()
    pids = {name.split("-")[1] for name in (p.name for p in record.iterdir())}
    assert len(list(record.iterdir())) == 2
    assert len(pids) == 1  # both shard processes used the one server


# --- shards that collect only their own files --------------------------------------------------

# Every pytest process notes the files it collected: the proof that each collected only its own.
COLLECTION_NOTE = """
import json, os
from pathlib import Path

def pytest_collection_finish(session):
    files = sorted({item.nodeid.split("::")[0] for item in session.items})
    note = Path(__file__).parents[1] / "collected.jsonl"
    with note.open("a") as out:
        out.write(json.dumps({"pid": os.getpid(), "files": files}) + "\\n")
"""

KNOWN_FILES = [f"tests/test_m{k}.py" for k in range(8)]  # 4 per CI machine, 2 per shard
TESTS = len(KNOWN_FILES) * 5 + 1


def by_file_project(make_project: object, name: str) -> Path:
    body = "".join(f"def test_{t}():\n    pass\n\n" for t in range(5))
    files = {path: body for path in KNOWN_FILES}
    files["tests/conftest.py"] = COLLECTION_NOTE
    # A test file the durations do not know yet: exactly one shard must collect it.
    files["tests/test_new.py"] = "def test_new():\n    pass\n"
    project = make_project(SHARED_PYPROJECT, files, name)  # type: ignore[operator]
    durations = {f"{path}::test_{t}": 0.01 for path in KNOWN_FILES for t in range(5)}
    (project / ".test_durations").write_text(json.dumps(durations))
    return project


def collection_notes(project: Path) -> list[list[str]]:
    lines = (project / "collected.jsonl").read_text().splitlines()
    notes = [json.loads(line) for line in lines]
    assert len({note["pid"] for note in notes}) == len(notes)  # one note per process
    return [note["files"] for note in notes]


def test_shards_collect_only_their_own_files_and_run_what_one_process_runs(
    make_project: object,
) -> None:
    project = by_file_project(make_project, "byfile")
    parallel = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert parallel.returncode == 0, parallel.stdout
    assert "shards collect only their own files" in parallel.stdout
    notes = collection_notes(project)
    assert len(notes) == 2
    every = [path for files in notes for path in files]
    assert sorted(every) == sorted([*KNOWN_FILES, "tests/test_new.py"])  # each file once
    assert all(len(files) < len(KNOWN_FILES) for files in notes)
    by_file = counts(project / "reports")

    (project / "collected.jsonl").unlink()
    serial = run_nox(project, "-s", "tests")
    assert serial.returncode == 0, serial.stdout
    assert collection_notes(project) == [sorted([*KNOWN_FILES, "tests/test_new.py"])]
    assert counts(project / "reports") == by_file
    assert by_file["passed"] == TESTS


def test_ci_machines_and_their_shards_collect_every_file_once(make_project: object) -> None:
    every: list[str] = []
    folders: list[str] = []
    for k in (1, 2):
        project = by_file_project(make_project, f"machine{k}")
        env = nox_env(PYTEST_WORKERS="2", NOXLIB_SHARD=f"{k}/2")
        result = run_nox(project, "-s", "ci", env=env)
        assert result.returncode == 0, result.stdout
        assert "shards collect only their own files" in result.stdout
        every += [path for files in collection_notes(project) for path in files]
        folders.append(str(project / "reports"))
    assert sorted(every) == sorted([*KNOWN_FILES, "tests/test_new.py"])
    # The machines planned alike (combine checks the plans' fingerprints): one whole run.
    combiner = by_file_project(make_project, "combiner")
    result = run_nox(combiner, "-s", "combine", "--", *folders)
    assert result.returncode == 0, result.stdout
    cases = junit_cases(combiner / "reports")
    assert len(cases) == len(set(cases)) == TESTS
    assert counts(combiner / "reports")["passed"] == TESTS


# --- a file that holds most of the time: split by function ------------------------------------

# Every pytest process notes each item it built and each item it kept to run.
BUILD_NOTE = """
import json, os
from pathlib import Path

NOTE = Path(__file__).parents[1] / "built.jsonl"

def _note(kind, ids):
    with NOTE.open("a") as out:
        out.write(json.dumps({"pid": os.getpid(), "kind": kind, "ids": ids}) + "\\n")

def pytest_collection_finish(session):
    _note("ran", [item.nodeid for item in session.items])

def pytest_itemcollected(item):
    _note("built", [item.nodeid])
"""

HEAVY_FILE = """
import unittest
import pytest

class TestVersion:
    @pytest.mark.parametrize("n", range(41))
    def test_cmp_true(self, n):
        pass

    @pytest.mark.parametrize("n", range(40))
    def test_cmp_false(self, n):
        pass

    def test_light(self):
        pass

class TestOld(unittest.TestCase):
    def test_a(self):
        pass

    def test_b(self):
        pass

def test_not_in_the_durations():
    pass
"""


def heavy_file_project(make_project: object) -> Path:
    files = {
        f"tests/test_l{k}.py": "def test_1():\n    pass\n\ndef test_2():\n    pass\n"
        for k in range(3)
    }
    files["tests/test_heavy.py"] = HEAVY_FILE
    files["tests/conftest.py"] = BUILD_NOTE
    project = make_project(SHARED_PYPROJECT, files, "heavy")  # type: ignore[operator]
    heavy = "tests/test_heavy.py::TestVersion"
    # test_cmp_true[40] is new: the durations know 0..39.
    durations = {
        f"{heavy}::test_cmp_{kind}[{n}]": 0.05 for kind in ("true", "false") for n in range(40)
    }
    durations.update({f"tests/test_l{k}.py::test_{t}": 0.001 for k in range(3) for t in (1, 2)})
    durations.update(
        {
            f"{heavy}::test_light": 0.001,
            "tests/test_heavy.py::TestOld::test_a": 0.001,
            "tests/test_heavy.py::TestOld::test_b": 0.001,
        }
    )
    (project / ".test_durations").write_text(json.dumps(durations))
    return project


def build_notes(project: Path) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    built: dict[int, list[str]] = {}
    ran: dict[int, list[str]] = {}
    for line in (project / "built.jsonl").read_text().splitlines():
        note = json.loads(line)
        (built if note["kind"] == "built" else ran).setdefault(note["pid"], []).extend(note["ids"])
    return built, ran


def test_a_file_that_holds_most_of_the_time_is_split_by_function(make_project: object) -> None:
    project = heavy_file_project(make_project)
    parallel = run_nox(project, "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert parallel.returncode == 0, parallel.stdout
    assert "by function within tests/test_heavy.py" in parallel.stdout
    built, ran = build_notes(project)
    assert len(ran) == 2
    # Each heavy function's items were built by one shard only: the other never paid for them.
    for kind in ("true", "false"):
        builders = {pid for pid, ids in built.items() if any(f"test_cmp_{kind}[" in i for i in ids)}
        assert len(builders) == 1, kind
    every = sorted(i for ids in ran.values() for i in ids)
    assert len(every) == len(set(every))  # none ran twice
    by_function = counts(project / "reports")

    (project / "built.jsonl").unlink()
    serial = run_nox(project, "-s", "tests")
    assert serial.returncode == 0, serial.stdout
    assert sorted(i for ids in build_notes(project)[1].values() for i in ids) == every
    assert counts(project / "reports") == by_function
    assert by_function["passed"] == 41 + 40 + 1 + 2 + 1 + 6
