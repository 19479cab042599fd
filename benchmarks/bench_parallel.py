"""Is `tests-parallel` really faster? Three suites, every engine, in the same interleaved rounds.

Suites (generated in a tmp dir, except tpch, which is this checkout's own group in a clone):

  tiny     30,000 parametrized tests of microseconds each, in 10 files
  skewed   4 long tests (2.0, 1.5, 1.0, 0.5 s) and 300 short ones (10 ms)
  tpch     `nox -s ci -- tpch` of this repository (coverage on, as CI runs it)

Configurations, each the wall time of the whole command, reused venv (`nox -R`):

  plain `pytest`         the session venv's pytest, what a user would otherwise run
  plain `pytest -n 2`    the same with pytest-xdist
  shards                 `nox -R -s tests-parallel -- --engine shards`
  xdist                  `nox -R -s tests-parallel -- --engine xdist`
  auto                   `nox -R -s tests-parallel` (the default: shards, or serial when the
                         recorded durations say parallel cannot win)
  PYTEST_WORKERS=1       `PYTEST_WORKERS=1 nox -R -s tests-parallel`
  start (skewed only)    `nox -R -s tests -- -k no_such_test`: nox, noxlib and pytest starting
                         and collecting, no test run; the "one process start" of the goal

It prints the medians and the ratios the goals are stated in (docs/benchmarks.md).

Usage: python benchmarks/bench_parallel.py [--rounds 5] [--suites tiny,skewed,tpch]
       (needs nox and noxlib importable by this Python, as the README's setup gives)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# noxlib's own sessions are parametrized by its python list: time this Python's ci session only.
CI_SESSION = "ci-{}.{}".format(*sys.version_info[:2])
CI_VENV = CI_SESSION.replace(".", "-")

PYPROJECT = """
[tool.noxlib]
install = []
default-groups = ["all"]

[tool.noxlib.groups.all]
paths = ["tests"]
"""

TINY = """
import pytest

@pytest.mark.parametrize("i", range(3000))
def test_tiny(i):
    assert i >= 0
"""

SKEWED = """
import time
import pytest

@pytest.mark.parametrize("seconds", [2.0, 1.5, 1.0, 0.5])
def test_long(seconds):
    time.sleep(seconds)

@pytest.mark.parametrize("i", range(300))
def test_short(i):
    time.sleep(0.01)
"""
SKEWED_LONGEST, SKEWED_TOTAL = 2.0, 5.0 + 300 * 0.01


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("CI", None)
    env.update(extra)
    return env


def make_suite(base: Path, name: str) -> Path:
    project = base / name
    (project / "tests").mkdir(parents=True)
    (project / "noxfile.py").write_text("import noxlib\n\nnoxlib.register_sessions()\n")
    (project / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    if name == "tiny":
        for k in range(10):
            (project / "tests" / f"test_tiny_{k}.py").write_text(TINY)
    else:
        (project / "tests" / "test_skewed.py").write_text(SKEWED)
    return project


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 5):
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall


def nox(*args: str, **env: str) -> Callable[[Path], float]:
    return lambda project: timed([sys.executable, "-m", "nox", *args], project, clean_env(**env))


def plain(venv: str, *args: str, path: str = "tests") -> Callable[[Path], float]:
    def run(project: Path) -> float:
        python = str(project / ".nox" / venv / "bin" / "python")
        argv = [python, "-m", "pytest", path, "-q", "-p", "no:cacheprovider", *args]
        return timed(argv, project, clean_env())

    return run


def configs(suite: str) -> dict[str, Callable[[Path], float]]:
    if suite == "tpch":
        return {
            "plain `pytest`": plain(CI_VENV, path="tests/tpch"),
            "plain `pytest -n 2`": plain(CI_VENV, "-n", "2", path="tests/tpch"),
            "`nox -s ci -- tpch` (auto)": nox("-R", "-s", CI_SESSION, "--", "tpch"),
            "shards": nox("-R", "-s", CI_SESSION, "--", "tpch", "--engine", "shards"),
            "xdist": nox("-R", "-s", CI_SESSION, "--", "tpch", "--engine", "xdist"),
            "PYTEST_WORKERS=1": nox("-R", "-s", CI_SESSION, "--", "tpch", PYTEST_WORKERS="1"),
        }
    found = {
        "plain `pytest`": plain("tests-parallel"),
        "plain `pytest -n 2`": plain("tests-parallel", "-n", "2"),
        "shards": nox("-R", "-s", "tests-parallel", "--", "--engine", "shards"),
        "xdist": nox("-R", "-s", "tests-parallel", "--", "--engine", "xdist"),
        "auto": nox("-R", "-s", "tests-parallel"),
        "PYTEST_WORKERS=1": nox("-R", "-s", "tests-parallel", PYTEST_WORKERS="1"),
    }
    if suite == "skewed":
        found["start"] = nox("-R", "-s", "tests", "--", "-k", "no_such_test")
    return found


def prepare(base: Path, suite: str) -> Path:
    if suite == "tpch":
        project = base / "tpch"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        warm = ["-s", CI_SESSION, "--", "tpch"]
    else:
        project = make_suite(base, suite)
        warm = ["-s", "tests-parallel", "--", "--engine", "shards"]
    # Warm-up: the venv, and a first durations file for the planner and the auto engine.
    for argv in (warm, ["-R", "-s", "tests"] if suite != "tpch" else warm):
        timed([sys.executable, "-m", "nox", *argv], project, clean_env())
    return project


def measure(project: Path, suite: str, rounds: int) -> dict[str, list[float]]:
    todo = configs(suite)
    walls: dict[str, list[float]] = {name: [] for name in todo}
    names = list(todo)
    for round_ in range(rounds):
        # Rotate the order each round: a burst of load hits every configuration alike.
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            walls[name].append(todo[name](project))
            print(f"{suite} round {round_ + 1}: {name}: {walls[name][-1]:.2f} s", flush=True)
    return walls


def report(suite: str, walls: dict[str, list[float]]) -> None:
    med = {name: statistics.median(values) for name, values in walls.items()}
    print(f"\n### {suite}\n\n| command | median | min | max |\n|---|---|---|---|")
    for name, values in walls.items():
        print(f"| {name} | {med[name]:.2f} s | {min(values):.2f} s | {max(values):.2f} s |")
    parallel = med.get("auto") or med["`nox -s ci -- tpch` (auto)"]
    print(f"\n- auto / PYTEST_WORKERS=1: {parallel / med['PYTEST_WORKERS=1']:.2f}")
    print(f"- shards / plain pytest: {med['shards'] / med['plain `pytest`']:.2f}")
    print(f"- shards / plain pytest -n 2: {med['shards'] / med['plain `pytest -n 2`']:.2f}")
    print(f"- auto / plain pytest: {parallel / med['plain `pytest`']:.2f}")
    if suite == "skewed":
        bound = max(SKEWED_LONGEST, SKEWED_TOTAL / 2) + med["start"]
        print(f"- lower bound max(longest, total/2) + start = {bound:.2f} s")
        print(
            f"- shards / bound: {med['shards'] / bound:.2f}; auto / bound: {parallel / bound:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--suites", default="tiny,skewed,tpch")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="noxlib-bench-parallel-"))
    print(f"suites in {base}; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    for suite in args.suites.split(","):
        project = prepare(base, suite)
        report(suite, measure(project, suite, args.rounds))


if __name__ == "__main__":
    main()
