"""Triage's verdicts under real nox, on git-committed copies of tests/projects/verdicts: a
polluter and its victim in two files, a 50 % flaky test with a seeded random source, a test
that fails only beside another running at the same time, a real failure, and a test that skips
when it runs alone. Serially and under each engine, each gets its verdict."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import nox_env, run_nox

PROJECT = Path(__file__).parents[1] / "projects" / "verdicts"
HOLDER = "tests/test_holder.py::test_holder"
VICTIM = "tests/test_then_checker.py::test_checker"
WAITER = "tests/test_b_waiter.py::test_fails_while_the_lock_is_held"
COIN = "tests/test_coin.py::test_coin"
REAL = "tests/test_real.py::test_real_failure"
LONELY = "tests/test_lonely.py::test_needs_company"
# Seed 1: the coin passes its first draw, so a run's failures are the four below.
SEED = "1"


def committed_copy(base: Path, name: str, *, tests: tuple[str, ...] = ()) -> Path:
    """A copy of the project in a git repository of its own (history keys evidence by code);
    ``tests`` keeps only those test files."""
    project = Path(shutil.copytree(PROJECT, base / name))
    if tests:
        for path in (project / "tests").glob("test_*.py"):
            if path.name not in tests:
                path.unlink()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], cwd=project, check=True)
    return project


def last_line(project: Path) -> dict[str, object]:
    lines = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    data: dict[str, object] = json.loads(lines[-1])
    return data


def verdicts(project: Path) -> dict[str, dict[str, object]]:
    failures = last_line(project)["failures"]
    assert isinstance(failures, list)
    return {str(f["nodeid"]): f for f in failures}


RUNS = {
    "serial": ("-s", "tests"),
    # ci: the session that writes junit.xml; shards, as tests-parallel runs them.
    "shards": ("-s", "ci", "--", "--engine", "shards"),
    "xdist": ("-s", "tests-parallel", "--", "--engine", "xdist"),
}


def run_copy(base: Path, name: str) -> tuple[Path, str, int]:
    project = committed_copy(base, name)
    workers = "1" if name == "serial" else "2"
    env = nox_env(NOXLIB_DEMO_SEED=SEED, PYTEST_WORKERS=workers, GITHUB_RUN_ID="4242")
    result = run_nox(project, *RUNS[name], env=env)
    return project, result.stdout, result.returncode


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, int]]:
    """Each run in a copy of its own. The shards run, whose lock pair must meet, runs alone;
    the serial and xdist runs (no timing asked of them) run at the same time."""
    base = tmp_path_factory.mktemp("verdicts")
    found = {"shards": run_copy(base, "shards")}
    with ThreadPoolExecutor(2) as pool:
        together = {name: pool.submit(run_copy, base, name) for name in ("serial", "xdist")}
        found.update({name: future.result() for name, future in together.items()})
    return found


def test_serially_the_victim_is_order_dependent_and_its_polluter_is_named(
    ran: dict[str, tuple[Path, str, int]],
) -> None:
    project, output, returncode = ran["serial"]
    assert returncode != 0, output
    found = verdicts(project)
    assert {k: v["triage"] for k, v in found.items()} == {
        VICTIM: "order-dependent",
        REAL: "fails-always",
        LONELY: "fails-always",  # skipped alone: no evidence; failed in its company
    }
    assert found[VICTIM]["polluter"] == [HOLDER]
    assert f"{VICTIM}: order-dependent: fails after {HOLDER} (found in " in output
    assert f"{REAL}: fails-always: failed 2 of 2 reruns alone" in output
    assert f"{LONELY}: fails-always: failed 1 of 1 reruns in its company" in output
    assert "not fixed by running serially (PYTEST_WORKERS=1)" in output
    flaky = (project / "reports" / "flaky.md").read_text()
    assert f"| `{VICTIM}` | order-dependent | `{HOLDER}` |" in flaky
    assert f"PYTEST_WORKERS=1 nox -s tests -- {HOLDER} {VICTIM}" in flaky
    report = (project / "reports" / "ci_timings.md").read_text()
    assert "This run was serial: the roll-back signal reads parallel runs only" in report
    assert "Roll back" not in output + report


def test_the_reproducing_command_of_flaky_md_makes_the_victim_fail(
    ran: dict[str, tuple[Path, str, int]],
) -> None:
    project, _, _ = ran["serial"]
    env = nox_env(PYTEST_WORKERS="1")
    together = run_nox(project, "-R", "-s", "tests", "--", "--no-triage", HOLDER, VICTIM, env=env)
    assert "1 passed, 1 failed" in together.stdout, together.stdout
    alone = run_nox(project, "-R", "-s", "tests", "--", VICTIM, env=env)
    assert alone.returncode == 0, alone.stdout


@pytest.mark.parametrize("engine", ["shards", "xdist"])
def test_under_each_engine_each_failure_gets_its_verdict(
    ran: dict[str, tuple[Path, str, int]], engine: str
) -> None:
    project, output, returncode = ran[engine]
    assert returncode != 0, output
    expected = {
        WAITER: "parallel-only",
        VICTIM: "order-dependent",
        REAL: "fails-always",
        LONELY: "fails-always",
    }
    found = {k: v["triage"] for k, v in verdicts(project).items()}
    # Which tests meet in one process is the engine's choice (xdist's above all); a test
    # that failed has its verdict, and the real failures fail under every engine.
    assert set(found) <= set(expected), output
    assert {REAL, LONELY} <= set(found)
    assert found == {k: expected[k] for k in found}
    if VICTIM in found:
        assert verdicts(project)[VICTIM]["polluter"] == [HOLDER]
    if engine == "shards":  # .test_durations puts the holder first in shard 1, beside the waiter
        assert set(found) == set(expected)
        assert "An order-dependent failure is not fixed by running serially" in output
        assert "A parallel-only failure is an isolation bug" in output


DATA = Path(__file__).parents[1] / "data"


def test_junit_xml_carries_the_reruns_and_validates_against_the_jenkins_schema(
    ran: dict[str, tuple[Path, str, int]],
) -> None:
    import xmlschema

    project, _, _ = ran["shards"]
    junit = project / "reports" / "junit.xml"
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(junit)
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    real = cases["test_real_failure"]
    assert real.find("failure") is not None  # the run's outcome stays the truth
    assert [r.get("message") for r in real.iter("rerunFailure")] == [
        "rerun 1 (alone): failed",
        "rerun 2 (alone): failed",
    ]
    waiter = cases["test_fails_while_the_lock_is_held"]
    assert waiter.find("failure") is not None
    assert list(waiter.iter("rerunFailure")) == []  # it passed every rerun
    assert "noxlib triage: parallel-only" in str(waiter.findtext("system-out"))
    victim = cases["test_checker"]
    assert [r.get("message") for r in victim.iter("rerunFailure")] == [
        "rerun 3 (in its company): failed",
        "rerun 4 (in its company): failed",
    ]
    assert f"fails after {HOLDER}" in str(victim.findtext("system-out"))


def test_ctrf_json_validates_against_the_ctrf_schema(
    ran: dict[str, tuple[Path, str, int]],
) -> None:
    import jsonschema

    project, _, _ = ran["shards"]
    document = json.loads((project / "reports" / "ctrf.json").read_text())
    schema = json.loads((DATA / "ctrf-schema-0.0.json").read_text())
    jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
    results = document["results"]
    tests = {t["name"]: t for t in results["tests"]}
    assert len(tests) == results["summary"]["tests"] == 14
    assert results["summary"]["failed"] == 4
    assert (tests[WAITER]["status"], tests[WAITER]["flaky"]) == ("failed", True)
    assert tests[WAITER]["retries"] == 2
    assert (tests[REAL]["flaky"], tests[REAL]["extra"]["triage"]) == (False, "fails-always")
    assert tests[VICTIM]["extra"]["polluter"] == [HOLDER]
    assert tests[HOLDER]["status"] == "passed"
    # The CI provider's run id: every shard of the CI run, and their combine, carry it.
    assert document["runId"] == "4242"


def test_the_flaky_test_is_never_called_fails_always_over_eight_seeded_runs(
    tmp_path: Path,
) -> None:
    project = committed_copy(tmp_path, "coin", tests=("test_coin.py", "test_middle.py"))
    # Seed 3020: the first run passes, and two of the eight fail both reruns alone, the case
    # that would read fails-always without the passing run at the same code.
    env = nox_env(NOXLIB_DEMO_SEED="3020", PYTEST_WORKERS="1")
    seen: dict[str, int] = {}
    failed_alone_twice = 0
    for index in range(8):
        result = run_nox(project, *(("-R",) if index else ()), "-s", "tests", env=env)
        for failure in verdicts(project).values():
            verdict = str(failure["triage"])
            seen[verdict] = seen.get(verdict, 0) + 1
            assert verdict != "fails-always", result.stdout
            failed_alone_twice += failure.get("alone") == ["failed", "failed"]
    assert failed_alone_twice >= 2, seen  # the seed still makes the case this test is about
    assert seen.get("flaky", 0) >= 3, seen  # it did fail, and was seen for what it is
    flaky = (project / "reports" / "flaky.md").read_text()
    assert f"| `{COIN}` | flaky |" in flaky
    assert "quarantine" in flaky  # it keeps flaking: flaky.md suggests the entry


def test_quarantined_failures_leave_the_run_green_and_an_expired_entry_fails_it(
    tmp_path: Path,
) -> None:
    project = committed_copy(tmp_path, "held", tests=("test_real.py", "test_middle.py"))
    pyproject = project / "pyproject.toml"
    entry = f'{{ id = "{REAL}", reason = "issue 7", expires = EXPIRES }}'
    text = pyproject.read_text().replace(
        "triage-budget = 60\n", f"triage-budget = 60\nquarantine = [{entry}]\n"
    )
    pyproject.write_text(text.replace("EXPIRES", "2999-01-01"))
    green = run_nox(project, "-s", "tests")
    assert green.returncode == 0, green.stdout
    assert f"noxlib: {REAL} failed; quarantined: issue 7, until 2999-01-01" in green.stdout
    assert "6 passed, 1 failed" in green.stdout  # still run, still reported
    assert verdicts(project)[REAL]["quarantined"] == "quarantined: issue 7, until 2999-01-01"
    assert "passed with warnings" in str(last_line(project)["status"])
    pyproject.write_text(text.replace("EXPIRES", "2020-01-01"))
    expired = run_nox(project, "-R", "-s", "tests")
    assert expired.returncode != 0, expired.stdout
    assert f"quarantine entry expired: {REAL} (expired 2020-01-01" in expired.stdout
    pyproject.write_text(text.replace("EXPIRES", '"soon"'))
    bad = run_nox(project, "-R", "-s", "tests")
    assert bad.returncode != 0
    assert "'expires' must be a TOML date without quotes, e.g. expires = 2027-03-01" in bad.stdout
    assert "Running" not in bad.stdout.split("'expires' must")[0].split("nox >")[-1]


def test_an_explicit_worker_count_runs_that_many_processes_where_auto_would_not(
    tmp_path: Path,
) -> None:
    project = committed_copy(tmp_path, "exact", tests=("test_middle.py",))
    # Recorded durations of microseconds: auto predicts that parallel cannot win.
    durations = {f"tests/test_middle.py::test_middle[{n}]": 0.001 for n in range(6)}
    (project / ".test_durations").write_text(json.dumps(durations))
    auto = run_nox(project, "-s", "tests-parallel", env=nox_env())
    assert "parallel cannot win" in auto.stdout, auto.stdout
    assert last_line(project)["workers"] == 1
    exact = run_nox(project, "-R", "-s", "tests-parallel", env=nox_env(PYTEST_WORKERS="2"))
    assert exact.returncode == 0, exact.stdout
    assert "2 processes were asked for; 2 workers: exactly PYTEST_WORKERS=2" in exact.stdout
    line = last_line(project)
    assert (line["mode"], line["workers"]) == ("parallel", 2)
    assert len(line["parts"]) == 2  # type: ignore[arg-type]
