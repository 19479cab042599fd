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
