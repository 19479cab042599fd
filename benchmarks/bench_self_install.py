"""What a fresh session venv pays to get noxlib from a checkout, under two build backends.

Every nested nox run of noxlib's own suite makes a fresh session venv, and a checkout installs
into it editable. This times, in interleaved rounds:

  editable install   `uv pip install --no-deps -e CHECKOUT` into a fresh `uv venv`
  nested nox run     `nox -s tests -- unit` in a fresh copy of tests/projects/basic, its
                     venv made from nothing (the run a typical integration test makes)

for this checkout and for another one (``--against``: a clone at an older commit, with the
Python whose noxlib is that clone's editable install). It prints medians and their ratio.

Usage: python benchmarks/bench_self_install.py --against CHECKOUT --against-python PYTHON
       [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tests" / "projects" / "basic"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("CI", None)
    return env


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def editable_install(checkout: Path, work: Path) -> float:
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    return timed(
        [*uv, "pip", "install", "-q", "-p", python, "--no-deps", "-e", str(checkout)], work
    )


def nested_run(python: str, work: Path) -> float:
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(PROJECT, project)
    return timed([python, "-m", "nox", "-s", "tests", "--", "unit"], project)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--against-python", required=True, help="a Python with it installed -e")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sides = {
        "this checkout": (ROOT, sys.executable),
        "against": (args.against, args.against_python),
    }
    figures: dict[str, dict[str, list[float]]] = {
        name: {"install": [], "nox": []} for name in sides
    }
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, (checkout, python) in sides.items():
                work = Path(tmp) / name.replace(" ", "-")
                work.mkdir(exist_ok=True)
                figures[name]["install"].append(editable_install(checkout, work))
                figures[name]["nox"].append(nested_run(python, work))
    ours, theirs = figures["this checkout"], figures["against"]
    for what in ("install", "nox"):
        a, b = statistics.median(ours[what]), statistics.median(theirs[what])
        print(
            f"{what}: this checkout {a:.3f} s, against {b:.3f} s "
            f"(median of {args.rounds}); {a / b:.2f}x"
        )


if __name__ == "__main__":
    main()
