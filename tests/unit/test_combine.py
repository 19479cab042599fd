"""``combine`` out of nox, through a fake host: a complete set merges into one run; an
interrupted combine leaves the reports folder as it was and writes no history line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noxlib.books import Books
from noxlib.combine import combine
from noxlib.config import load_config
from noxlib.cover import PUBLISHED_DATA
from noxlib.merge import write_merged
from noxlib.runinfo import PartRow, RunInfo, write_run_info
from tests.unit.test_run import PYPROJECT, FakeHost, make_venv


def shard_folder(
    base: Path, index: int, total: int, nodeid: str, coverage: bool, *, processes: int = 1
) -> Path:
    """A shard's reports folder, as a `NOXLIB_SHARD` job leaves it (``processes`` parts)."""
    folder = base / f"reports-shard-{index}"
    result = {"nodeid": nodeid, "outcome": "passed", "duration": 0.1}
    write_merged(Books([result]), [nodeid], folder, junit_files=[])
    info = RunInfo(
        session="ci",
        groups=("unit",),
        shard=f"{index}/{total}",
        plan="p1",
        root=str(base / f"checkout-{index}"),
        status="passed",
        wall_seconds=1.0,
        parts=tuple(PartRow(f"part-{k}", "passed", 1, 0.1, 0.1) for k in range(processes)),
        books={"balanced": True, "tests": 1, "not_run": [], "conflicts": [], "unselected": []},
    )
    write_run_info(folder, info)
    if coverage:
        (folder / PUBLISHED_DATA).write_text("")  # makes combine install coverage first
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "tests").mkdir()
    return root


def test_a_complete_set_merges_into_one_run(project: Path, tmp_path: Path) -> None:
    folders = [shard_folder(tmp_path, k, 2, f"tests/test_{k}.py::t", False) for k in (1, 2)]
    host = FakeHost(make_venv(tmp_path / "venv"))
    combine(host, load_config(project), folders, ())
    reports = project / "reports"
    lines = (reports / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["nodeid"] for line in lines) == [
        "tests/test_1.py::t",
        "tests/test_2.py::t",
    ]
    text = (reports / "ci_timings.md").read_text()
    assert "every collected test ran once (2 tests)" in text
    # Each machine ran one serial process: no "engine shards" that never ran.
    assert "- Mode: sharded across 2 machines, each serial, 2 worker(s)\n" in text
    assert len((reports / "ci_timings.jsonl").read_text().splitlines()) == 1
    assert not [p for p in project.iterdir() if p.name.startswith(".reports.")]  # no stage left


class InterruptedHost(FakeHost):
    """Ctrl-C arrives while combine installs coverage (its merge is done, its report is not)."""

    def install(self, *args: str) -> None:
        raise KeyboardInterrupt("signal SIGINT")


def test_an_interrupted_combine_leaves_the_reports_folder_as_it_was(
    project: Path, tmp_path: Path
) -> None:
    reports = project / "reports"
    reports.mkdir()
    before = {"junit.xml": "<old/>", "results.jsonl": "{}\n", "ci_timings.jsonl": '{"old": 1}\n'}
    for name, text in before.items():
        (reports / name).write_text(text)
    folders = [shard_folder(tmp_path, k, 2, f"tests/test_{k}.py::t", True) for k in (1, 2)]
    host = InterruptedHost(make_venv(tmp_path / "venv"))
    with pytest.raises(KeyboardInterrupt):
        combine(host, load_config(project), folders, ())
    assert {p.name: p.read_text() for p in reports.iterdir()} == before
    assert not [p for p in project.iterdir() if p.name.startswith(".reports.")]
    assert any("the reports folder is left as it was" in line for line in host.lines)


def test_machines_that_ran_several_processes_say_how_many(project: Path, tmp_path: Path) -> None:
    folders = [
        shard_folder(tmp_path, k, 2, f"tests/test_{k}.py::t", False, processes=2) for k in (1, 2)
    ]
    combine(FakeHost(make_venv(tmp_path / "venv")), load_config(project), folders, ())
    text = (project / "reports" / "ci_timings.md").read_text()
    assert "- Mode: sharded across 2 machines, with 2, 2 pytest processes, 4 worker(s)\n" in text
