"""Wall time of `nox -s ci -- tpch`: serial vs parallel, servers per worker vs shared.

Clones this checkout's HEAD into a tmp dir (the working copy's .nox and reports stay
untouched), makes the session venv and the data cache once with a warm-up run, then runs
`nox -R -s ci -- tpch` REPEAT times in each configuration, the configurations interleaved
so that a burst of load on a shared machine hits all of them alike:

  serial               PYTEST_WORKERS=1 (one pytest process, one server per engine)
  2 workers, per-worker PYTEST_WORKERS=2, NOXLIB_TPCH_SERVERS=per-worker (2 servers per engine)
  2 workers, shared     PYTEST_WORKERS=2, NOXLIB_TPCH_SERVERS=shared (1 server per engine)

It prints the medians (and minimums) of the whole nox run and of its pytest phase, as
recorded in reports/ci_timings.jsonl; the pytest phase is the part the choice affects. In the
same rounds it times what a user would otherwise run: the venv's plain `pytest tests/tpch`,
serial and `-n 2` (shared servers, no coverage).

Usage: python benchmarks/bench_tpch.py [--repeat 5] [--scale 0.01]
       (needs nox importable by this Python, as the README's setup gives)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "serial": {"PYTEST_WORKERS": "1", "NOXLIB_TPCH_SERVERS": "per-worker"},
    "2 workers, servers per worker": {"PYTEST_WORKERS": "2", "NOXLIB_TPCH_SERVERS": "per-worker"},
    "2 workers, shared servers": {"PYTEST_WORKERS": "2", "NOXLIB_TPCH_SERVERS": "shared"},
}


def clean_env(scale: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("CI", None)
    env.update(NOXLIB_TPCH_SCALE=scale, **extra)
    return env


def run_ci(project: Path, env: dict[str, str], *, reuse: bool) -> tuple[float, float]:
    """One `nox -s ci -- tpch`: (wall seconds, seconds of its pytest phase)."""
    argv = [sys.executable, "-m", "nox", *(["-R"] if reuse else []), "-s", "ci", "--", "tpch"]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    last = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1]
    phases = {p["name"]: p["seconds"] for p in json.loads(last)["phases"]}
    return wall, phases["pytest"]


# What a user would otherwise run: pytest itself, in the same venv, no nox and no coverage.
PLAIN = {
    "plain `pytest` (serial)": ["-p", "no:xdist"],
    "plain `pytest -n 2`": ["-n", "2"],
}


def run_plain(project: Path, env: dict[str, str], args: list[str]) -> float:
    """Wall seconds of the session venv's pytest on the group, run directly."""
    python = project / ".nox" / "ci" / "bin" / "python"
    argv = [str(python), "-m", "pytest", "tests/tpch", "-q", "-p", "no:cacheprovider", *args]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", default="0.01")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="noxlib-bench-tpch-")) / "p"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
    print(f"warm-up in {project}: venv and data cache", flush=True)
    run_ci(project, clean_env(args.scale), reuse=False)
    walls: dict[str, list[float]] = {name: [] for name in CONFIGS}
    pytests: dict[str, list[float]] = {name: [] for name in CONFIGS}
    plain: dict[str, list[float]] = {name: [] for name in PLAIN}
    for round_ in range(1, args.repeat + 1):
        for name, extra_args in PLAIN.items():
            plain[name].append(run_plain(project, clean_env(args.scale), extra_args))
            print(f"round {round_}: {name}: {plain[name][-1]:.2f} s", flush=True)
        for name, extra in CONFIGS.items():
            wall, pytest_phase = run_ci(project, clean_env(args.scale, **extra), reuse=True)
            walls[name].append(wall)
            pytests[name].append(pytest_phase)
            print(f"round {round_}: {name}: {wall:.2f} s, pytest {pytest_phase:.2f} s", flush=True)
    print(f"\nscale factor {args.scale}, {args.repeat} runs each, `nox -R -s ci -- tpch`\n")
    print("| configuration | wall, median | wall, min | pytest phase, median | pytest, min |")
    print("|---|---|---|---|---|")
    for name in CONFIGS:
        w, p = walls[name], pytests[name]
        print(
            f"| {name} | {statistics.median(w):.2f} s | {min(w):.2f} s "
            f"| {statistics.median(p):.2f} s | {min(p):.2f} s |"
        )
    for name, w in plain.items():
        print(
            f"| {name} (no nox, no coverage) | {statistics.median(w):.2f} s | {min(w):.2f} s | | |"
        )


if __name__ == "__main__":
    main()
