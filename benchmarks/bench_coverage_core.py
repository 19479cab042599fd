"""Coverage's measurement cores on a real suite: what ``core = sysmon`` saves, per Python.

noxlib asks coverage for its ``sysmon`` core (sys.monitoring, PEP 669) where it can measure
what the run asks for, and keeps the default ``ctrace`` core elsewhere (noxlib.measure.choose_core).
This script times attrs' suite (benchmarks/real_suites.py) with plain pytest and under
``coverage run`` with each core, line and branch coverage, on each Python given, in interleaved
rounds. sysmon measures branches only from Python 3.14 on: on older Pythons the branch rows
have ctrace only.

Usage (an interpreter with noxlib installed; each Python given must exist):

  python benchmarks/bench_coverage_core.py --python /usr/bin/python3.12 [--python ...] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from real_suites import CACHE, SUITES, Command, extract, rounds, test_requirements, venv_env

from noxlib.measure import render_rc

SUITE = "attrs"
COVERAGE = "coverage>=7.11.1"


def version_of(python: str) -> tuple[int, int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    major, minor = out.stdout.split()
    return int(major), int(minor)


def make_venv(python: str, dest: Path, tag: str) -> Path:
    """dest/.core-venv-TAG: the suite, its test group, pytest and coverage, on ``python``."""
    venv = dest / f".core-venv-{tag}"
    if not (venv / "bin" / "python").exists():
        uv = [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "--python", python, str(venv)], cwd=dest, check=True)
        reqs = ["-e", ".", *test_requirements(SUITES[SUITE], dest), "pytest", COVERAGE]
        pip = [*uv, "pip", "install", "--python", str(venv / "bin" / "python"), *reqs]
        subprocess.run(pip, cwd=dest, check=True)
    return venv


def rcfile(dest: Path, tag: str, core: str, branch: bool) -> Path:
    """An rc file as noxlib writes one (parallel, patch = subprocess), with this core."""
    data = dest / ".core-data" / tag / f"{core}-{'branch' if branch else 'line'}"
    data.mkdir(parents=True, exist_ok=True)
    run = {
        "parallel": True,
        "patch": ["subprocess"],
        "branch": branch,
        "core": core,
        "source": list(SUITES[SUITE].coverage_source),
        "data_file": str(data / ".coverage"),
    }
    path = data.parent / f"{core}-{'branch' if branch else 'line'}.rc"
    path.write_text(render_rc({"run": run}), encoding="utf-8")
    return path


def configs(python: str, dest: Path) -> dict[str, Command]:
    major, minor = version_of(python)
    tag = f"{major}.{minor}"
    venv = make_venv(python, dest, tag)
    env = {**venv_env(dest), "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin"}
    py = str(venv / "bin" / "python")
    args = SUITES[SUITE].args()
    found = {f"{tag} pytest": Command((py, "-m", "pytest", "-q", *args), dest, env)}
    cores = ["ctrace", "sysmon"] if (major, minor) >= (3, 12) else ["ctrace"]
    for branch in (False, True):
        for core in cores:
            if branch and core == "sysmon" and (major, minor) < (3, 14):
                continue  # coverage would warn and use ctrace: the same row again
            rc = str(rcfile(dest, tag, core, branch))
            name = f"{tag} coverage {core} {'branch' if branch else 'line'}"
            argv = (py, "-m", "coverage", "run", "--rcfile", rc, "-m", "pytest", "-q", *args)
            found[name] = Command(argv, dest, env)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dest", type=Path, default=Path("/tmp/noxlib-bench-core/attrs"))
    args = parser.parse_args()
    extract(SUITES[SUITE], args.dest, CACHE)
    every: dict[str, Command] = {}
    for python in args.python:
        every.update(configs(python, args.dest))
    medians = rounds(every, args.rounds, log=lambda line: print(line, flush=True))
    print("\n| configuration | median s |\n|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
