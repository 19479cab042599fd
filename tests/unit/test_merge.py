"""Parts and CI shards merged into one run: results, the books' sources of parts and shards,
the merged folder, and the durations file under its lock. (JUnit XML: test_junit.py; run.json
and the shard set: test_runinfo.py.)"""

from __future__ import annotations

import fcntl
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

from noxlib.books import balance
from noxlib.durations import read_durations, write_durations
from noxlib.idfile import read_ids
from noxlib.merge import (
    JUNIT_FILE,
    RESULTS_FILE,
    TESTS_FILE,
    measured_durations,
    part_source,
    read_results,
    shard_source,
    update_durations,
    write_merged,
    write_results,
)
from noxlib.parts import PartFiles
from noxlib.runinfo import PartRow, RunInfo

# --- results ----------------------------------------------------------------------------------


def part(folder: Path, share: list[str], results: list[dict[str, object]]) -> PartFiles:
    """A part's folder as its pytest process leaves it: its share, then its results."""
    files = PartFiles(folder)
    folder.mkdir(parents=True)
    files.write_share(share, {"event": "selected", "how": "all", "count": len(share)})
    write_results(files.results, results)
    return files


def test_results_skip_a_torn_line_and_merge_one_per_node_id(tmp_path: Path) -> None:
    """A dead writer's half line is skipped; the collection error every shard reports is one."""
    error = {"nodeid": "tests/bad.py", "outcome": "error", "when": "collect"}
    first = part(tmp_path / "a", ["tests/a.py::t"], [])
    write_results(first.results, [{"nodeid": "tests/a.py::t", "outcome": "passed"}, error])
    second = part(tmp_path / "b", [], [])
    second.results.write_text(json.dumps(error) + "\n" + '{"nodeid": "tests/b.py::t", "outc')
    assert read_results(second.results) == [error]
    assert read_results(tmp_path / "missing.jsonl") == []
    books = balance([part_source("a", first), part_source("b", second)])
    assert [r["nodeid"] for r in books.results] == ["tests/bad.py", "tests/a.py::t"]
    assert books.balanced


def test_a_part_source_is_its_shares_and_results(tmp_path: Path) -> None:
    """A relaunched part set out to run both processes' shares; the engine's reasons are kept;
    a part whose process never chose its tests is unselected, with the engine's problem."""
    files = part(tmp_path / "p", ["t::a", "t::b"], [{"nodeid": "t::a", "outcome": "crashed"}])
    files.set_aside(1)
    files.write_share(["t::b", "t::c"], {"event": "selected", "how": "list", "count": 2})
    source = part_source("shard-1", files, unfinished="its time limit")
    assert source.expected == ["t::a", "t::b", "t::c"]
    assert source.results == [{"nodeid": "t::a", "outcome": "crashed"}]
    assert (source.name, source.unfinished, source.selected) == ("shard-1", "its time limit", True)
    never = PartFiles(tmp_path / "never")
    assert not part_source("shard-2", never, problem="pytest exited with code 4").selected
    assert part_source("shard-2", never, problem="pytest exited with code 4").problem == (
        "pytest exited with code 4"
    )
    assert "ended before it chose its tests" in part_source("shard-2", never).problem


def test_a_merged_folder_is_a_shards_source_for_combine(tmp_path: Path) -> None:
    """What write_merged leaves in a shard's reports folder is what combine reads back: its
    results, not-run ones included, the ids it expected, and its unselected parts."""
    books = balance([part_source("shard-1", part(tmp_path / "p", ["t::a", "t::b"], []))])
    out = tmp_path / "reports"
    write_merged(books, ["t::a", "t::b"], out, junit_files=[])
    assert read_ids(out / TESTS_FILE) == ["t::a", "t::b"]
    assert [r["outcome"] for r in read_results(out / RESULTS_FILE)] == ["not-run", "not-run"]
    assert (out / JUNIT_FILE).is_file()
    write_merged(books, [], tmp_path / "no-junit", junit_files=None)
    assert not (tmp_path / "no-junit" / JUNIT_FILE).exists()
    run = RunInfo("ci", ("unit",), "2/3", "p", "/src", "failed", 1.0, (PartRow("s", "x", 0, 0, 0),))
    source = shard_source(out, replace(run, books={"unselected": [["shard-1", "it died"]]}))
    assert source.name == "shard 2/3"
    assert source.expected == ["t::a", "t::b"]
    assert len(source.results) == 2
    assert not source.selected
    assert source.problem == "shard-1: it died"
    assert shard_source(out, run).selected
    # A file its own shards left to each other and none took: combine's books fail on it too.
    lost = replace(run, books={"never_collected": [["tests/test_b.py", "shard-1"]]})
    assert balance([shard_source(out, lost)]).never_collected == [("tests/test_b.py", "shard 2/3")]


def test_measured_durations_leave_out_crashes_and_collection_errors() -> None:
    results = [
        {"nodeid": "tests/a.py::ok", "outcome": "passed", "duration": 0.5},
        {"nodeid": "tests/a.py::slow", "outcome": "timeout", "duration": 30.0},
        {"nodeid": "tests/a.py::dead", "outcome": "crashed", "duration": 0.0},
        {"nodeid": "tests/bad.py", "outcome": "error", "when": "collect", "duration": 0.0},
    ]
    assert measured_durations(results) == {"tests/a.py::ok": 0.5, "tests/a.py::slow": 30.0}


# --- the durations file -----------------------------------------------------------------------


def crashed(nodeid: str) -> dict[str, object]:
    return {"nodeid": nodeid, "outcome": "crashed", "duration": 0.0, "when": "call"}


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
