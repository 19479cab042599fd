"""A whole run, out of nox: `run.TestRun` with a fake host (log, install, a venv folder) and a
fake engine that writes what a part's pytest process writes (its share, its results, its end).
The run's books decide: every test once passes; a lost or a doubled result line fails the run
and the report names the test."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from noxlib.config import Config, load_config
from noxlib.findings import STEP_SUMMARY_ENV
from noxlib.idfile import read_ids
from noxlib.machine import Machine
from noxlib.memory import Sampler
from noxlib.merge import read_results
from noxlib.partrun import Part, PartOutcome
from noxlib.plan import MODES, Plan, make_plan
from noxlib.reaping import start_run
from noxlib.run import RunFailed, TestRun
from noxlib.runinfo import read_run_info
from tests.conftest import PLAIN_PYPROJECT

PYPROJECT = PLAIN_PYPROJECT
TESTS = ["tests/test_a.py::test_one", "tests/test_a.py::test_two", "tests/test_b.py::test_three"]


class FakeHost:
    """What a run needs of nox (run.Host): a name, a log, installs, a venv's folders."""

    name = "tests"

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self.installs: list[tuple[str, ...]] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def install(self, *args: str) -> None:
        self.installs.append(args)

    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        return {"PATH": str(self.bin())}


def make_venv(folder: Path) -> Path:
    """A folder that looks like a venv: its python is this one, its pyvenv.cfg names it."""
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(sys.executable)
    version = ".".join(map(str, sys.version_info[:3]))
    (folder / "pyvenv.cfg").write_text(
        f"home = {Path(sys.executable).parent}\nversion = {version}\n"
    )
    return folder


Tamper = Callable[[list[dict[str, object]]], list[dict[str, object]]]


def fake_engine(tamper: Tamper = lambda lines: lines, seen: list[Part] | None = None) -> object:
    """A function with engine.run_parts' signature: each part collects and selects TESTS, every
    test passes, and the part ends with exit status 0. ``tamper`` edits the result lines
    before they are written."""

    def run_parts(
        parts: Sequence[Part],
        slots: int,
        *,
        tick: Callable[[float], object] = lambda elapsed: None,
        on_end: Callable[[PartOutcome], object] = lambda outcome: None,
        sampler: Sampler | None = None,
    ) -> list[PartOutcome]:
        outcomes = []
        for part in parts:
            files = part.files
            files.dir.mkdir(parents=True, exist_ok=True)
            files.write_collected(TESTS, 0.1)
            files.write_share(TESTS, {"event": "selected", "how": "all", "count": len(TESTS)})
            lines = [
                {"nodeid": i, "outcome": "passed", "duration": 0.25, "when": "call", "worker": ""}
                for i in TESTS
            ]
            with files.results.open("w", encoding="utf-8") as out:
                out.writelines(json.dumps(line) + "\n" for line in tamper(lines))
            files.event({"event": "finished", "exitstatus": 0})
            outcome = PartOutcome(part, status="passed", exit_code=0, seconds=0.75, attempts=1)
            tick(0.75)
            on_end(outcome)
            outcomes.append(outcome)
            if seen is not None:
                seen.append(part)
        return outcomes

    return run_parts


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv(STEP_SUMMARY_ENV, raising=False)  # no step summary of a real CI job
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    for name in ("test_a.py", "test_b.py"):
        (root / "tests" / name).write_text("")
    return load_config(root)


def plan_for(config: Config) -> Plan:
    machine = Machine(cpus=2, available_memory=8 * 2**30)
    return make_plan(MODES["tests"], [], {}, config, machine, durations={})


def run_tests(config: Config, engine: object, host: FakeHost) -> TestRun:
    plan = plan_for(config)
    run = start_run(config.state_dir)  # TestRun.execute releases it, whatever happens
    test_run = TestRun(host, config, plan, run, {}, engine=engine)  # type: ignore[arg-type]
    test_run.execute()
    return test_run


def test_a_run_whose_every_test_passed_once_passes(project: Config, tmp_path: Path) -> None:
    host = FakeHost(make_venv(tmp_path / "venv"))
    parts: list[Part] = []
    test_run = run_tests(project, fake_engine(seen=parts), host)

    assert str(test_run.status) == "passed"
    (part,) = parts
    assert part.name == "serial"
    assert part.argv[:3] == (str(host.bin() / "python"), "-m", "pytest")
    assert part.dir.parent.parent == test_run.run.dir
    assert "pytest" in host.installs[0]  # the test tools, into the host's venv

    reports = project.reports_path
    results = read_results(reports / "results.jsonl")
    assert [r["nodeid"] for r in results] == TESTS
    assert {r["outcome"] for r in results} == {"passed"}
    assert read_ids(reports / "tests.jsonl") == TESTS
    info = read_run_info(reports)
    assert (info.session, info.status, info.groups, info.shard) == (
        "tests",
        "passed",
        ("unit",),
        None,
    )
    assert info.books == {
        "balanced": True,
        "tests": 3,
        "not_run": [],
        "conflicts": [],
        "unselected": [],
        "never_collected": [],
    }
    assert info.python == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert [(row.name, row.status, row.tests) for row in info.parts] == [("serial", "passed", 3)]
    timings = (reports / "ci_timings.md").read_text()
    assert "every collected test ran once (3 tests)" in timings
    assert "noxlib: every collected test ran once (3 tests)" in host.lines
    assert host.warnings == []
    # No durations file in the project: the figures go to the state folder, not the tree.
    assert not project.durations_path.exists()
    durations = json.loads(project.durations.local.read_text())
    assert durations == dict.fromkeys(TESTS, 0.25)
    assert not test_run.run.dir.exists()  # the run's folder is forgotten at its end


def test_a_result_line_lost_fails_the_run_naming_the_test(project: Config, tmp_path: Path) -> None:
    lost = TESTS[1]
    host = FakeHost(make_venv(tmp_path / "venv"))
    engine = fake_engine(lambda lines: [line for line in lines if line["nodeid"] != lost])
    with pytest.raises(RunFailed) as failed:
        run_tests(project, engine, host)
    reason = f"1 test never ran (serial finished without reporting it): {lost}"
    assert str(failed.value) == f"the books do not balance: {reason}"

    reports = project.reports_path
    results = {str(r["nodeid"]): r for r in read_results(reports / "results.jsonl")}
    assert results[lost]["outcome"] == "not-run"
    assert results[lost]["longrepr"] == "Never ran: serial finished without reporting it."
    info = read_run_info(reports)
    assert info.status == "failed"
    assert info.reason == "the books do not balance"
    assert info.books["not_run"] == [[lost, "serial finished without reporting it"]]
    assert info.books["balanced"] is False
    timings = (reports / "ci_timings.md").read_text()
    assert reason in timings
    assert "every collected test ran once" not in timings
    assert any(lost in line and "do not balance" in line for line in host.lines)


def test_a_result_line_written_twice_fails_the_run_naming_the_conflict(
    project: Config, tmp_path: Path
) -> None:
    twice = TESTS[0]
    host = FakeHost(make_venv(tmp_path / "venv"))
    engine = fake_engine(
        lambda lines: [*lines, *(line for line in lines if line["nodeid"] == twice)]
    )
    with pytest.raises(RunFailed) as failed:
        run_tests(project, engine, host)
    assert str(failed.value) == f"the books do not balance: 1 test reported more than once: {twice}"

    reports = project.reports_path
    results = read_results(reports / "results.jsonl")
    assert [r["nodeid"] for r in results] == TESTS  # still one result per test
    conflict = f"{twice} has 2 results (passed in serial, passed in serial); counted as passed"
    assert results[0]["conflict"] == conflict
    info = read_run_info(reports)
    assert info.status == "failed"
    assert info.books["conflicts"] == [conflict]
    assert f"1 test reported more than once: {twice}" in (reports / "ci_timings.md").read_text()


def test_a_shards_log_line_says_its_share_is_not_in_its_arguments(tmp_path: Path) -> None:
    from noxlib.launch import command_line
    from noxlib.partrun import Part

    argv = ("python", "-m", "pytest", "tests", "-m", "not slow", "-n", "0")
    assert command_line(Part("serial", argv, {}, tmp_path)) == "-m pytest tests -m 'not slow' -n 0"
    shard = Part("shard-1", argv, {"NOXLIB_SHARDS": "1/2"}, tmp_path)
    assert command_line(shard).endswith("  [only shard 1/2 of what it collects: NOXLIB_SHARDS]")
    files = Part("shard-2", argv, {"NOXLIB_SHARD_FILES": "/r/files-2.json"}, tmp_path)
    assert command_line(files).endswith("[only its share of the files, from /r/files-2.json]")
