"""The progress line while shards run: counts from the parts' result files, and an ETA of
predicted time when the durations know the tests (of test count when they do not)."""

from __future__ import annotations

import json
from pathlib import Path

from noxlib.parts import PartFiles, pricer
from noxlib.progress import Progress, clock


def part(folder: Path, selected: int, predicted: float, done: list[str]) -> PartFiles:
    files = PartFiles(folder)
    folder.mkdir(parents=True)
    files.event({"event": "selected", "count": selected, "predicted": predicted})
    lines = [json.dumps({"nodeid": n, "outcome": "passed"}) + "\n" for n in done]
    files.results.write_text("".join(lines), encoding="utf-8")
    return files


def drawn(progress: Progress, elapsed: float) -> str:
    shown: list[str] = []
    progress.write = shown.append
    progress.tick(elapsed)
    return shown[-1].strip()


def test_counts_from_every_part_and_an_eta_by_count_without_durations(tmp_path: Path) -> None:
    parts = [
        part(tmp_path / "a", 10, 0.0, [f"t.py::a{i}" for i in range(3)]),
        part(tmp_path / "b", 10, 0.0, [f"t.py::b{i}" for i in range(2)]),
    ]
    line = drawn(Progress(parts, print, tty=False), elapsed=10.0)
    # 5 of 20 done in 10 s: 15 more at the same pace take 30 s.
    assert line == f"noxlib: 5/20 tests (5 passed), 0:10, ETA {clock(30.0)}"


def test_the_eta_is_of_predicted_time_when_one_long_test_is_left(tmp_path: Path) -> None:
    durations = {f"t.py::fast{i}": 0.1 for i in range(10)} | {"t.py::slow": 60.0}
    done = [f"t.py::fast{i}" for i in range(10)]
    parts = [part(tmp_path / "a", 11, 61.0, done)]
    progress = Progress(parts, print, tty=False, price=pricer(durations))
    line = drawn(progress, elapsed=20.0)
    # 1 s of 61 predicted took 20 s: 60 s more take 1200 s. By count it would say 0:02.
    assert line.endswith(f"ETA {clock(1200.0)}")
    assert line.startswith("noxlib: 10/11 tests (10 passed)")


def test_unknown_tests_are_priced_as_the_shards_price_them(tmp_path: Path) -> None:
    durations = {"t.py::known": 2.0, "u.py::other": 10.0}
    # new1 is priced at its file's median, 2 s (not the overall median, 6 s, nor 0): 2 of the
    # 14 s selected took 20 s, so 12 s more take 120 s. By count, 1 of 3: 40 s.
    parts = [part(tmp_path / "a", 3, 14.0, ["t.py::new1"])]
    line = drawn(Progress(parts, print, tty=False, price=pricer(durations)), elapsed=20.0)
    assert line.endswith(f"ETA {clock(120.0)}")


def start(files: PartFiles, nodeid: str) -> None:
    with files.started.open("a", encoding="utf-8") as out:
        out.write(json.dumps(nodeid) + "\n")


def finish(files: PartFiles, nodeid: str) -> None:
    with files.results.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"nodeid": nodeid, "outcome": "passed"}) + "\n")


def test_the_eta_counts_down_and_never_grows_while_the_last_test_runs(tmp_path: Path) -> None:
    # The case: one 2 s test left. The old ETA grew from 0:21 to 0:51 while it ran.
    durations = {f"t.py::fast{i}": 0.2 for i in range(10)} | {"t.py::last": 2.0}
    files = part(tmp_path / "a", 11, 4.0, [])
    progress = Progress([files], print, tty=True, price=pricer(durations))  # redrawn each tick
    for i in range(10):
        start(files, f"t.py::fast{i}")
        finish(files, f"t.py::fast{i}")
    start(files, "t.py::last")
    etas = []
    for second in range(3, 8):  # a fake clock: the elapsed seconds the engine would pass
        line = drawn(progress, elapsed=float(second))
        etas.append(line.rsplit("ETA ", 1)[-1] if "ETA" in line else line)
    # 2 of 4 predicted seconds took 3 s: 3 s more; then one second less each second.
    assert etas[:3] == ["0:03", "0:02", "0:01"]
    assert etas[3:] == [
        "noxlib: 10/11 tests (10 passed), 0:06, running t.py::last for 3 s",
        "noxlib: 10/11 tests (10 passed), 0:07, running t.py::last for 4 s",
    ]


def test_the_eta_is_estimated_again_when_a_result_lands(tmp_path: Path) -> None:
    files = part(tmp_path / "a", 4, 0.0, [])
    progress = Progress([files], print, tty=False)
    start(files, "t.py::a")
    finish(files, "t.py::a")
    assert drawn(progress, elapsed=10.0).endswith("ETA 0:30")  # 1 of 4 in 10 s
    assert drawn(progress, elapsed=20.0).endswith("ETA 0:20")  # counting down
    finish(files, "t.py::b")
    assert drawn(progress, elapsed=30.0).endswith("ETA 0:30")  # 2 of 4 in 30 s: 30 s more


def test_a_log_gets_a_last_line_with_the_final_counts(tmp_path: Path) -> None:
    files = part(tmp_path / "a", 2, 0.0, ["t.py::a"])
    shown: list[str] = []
    progress = Progress([files], shown.append, tty=False)
    progress.tick(11.0)
    finish(files, "t.py::b")
    progress.close(12.0)
    assert shown[-1] == "noxlib: 2/2 tests (2 passed), 0:12\n"


def test_a_file_that_did_not_import_is_said_apart_from_the_tests(tmp_path: Path) -> None:
    # The "16/15 tests": the file's error counted as a test the selection never had.
    files = part(tmp_path / "a", 2, 0.0, ["t.py::a", "t.py::b"])
    with files.results.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"nodeid": "tests/test_broken.py", "outcome": "error"}) + "\n")
    shown: list[str] = []
    Progress([files], shown.append, tty=False).close(12.0)
    assert shown[-1] == "noxlib: 2/2 tests (2 passed), 1 file did not import, 0:12\n"
