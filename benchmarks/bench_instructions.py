"""What the plugin costs per test, in instructions: a figure no load on the machine can move.

Wall times here vary by 30 % between rounds, which hides a cost of a few µs a test. valgrind's
callgrind counts the instructions a process runs instead, the same whatever else the machine
does. For each size N of ``--sizes`` this runs, under callgrind, plain pytest and pytest with
noxlib's plugin switched on (as a part of a run switches it on: NOXLIB_RUN_DIR and
NOXLIB_PART_DIR), on generated suites of N and N + STEP tiny tests, all in noxlib's session venv
of the suite, so the plugin is the only difference. The cost of a test is the slope:
(instructions at N + STEP - instructions at N) / STEP. It prints, per size, plain pytest's
instructions per test, the plugin's run's, and what the plugin adds (absolute and as a share).
A cost that grows with N shows as a slope that grows with N.

Usage: python benchmarks/bench_instructions.py [--sizes 1000,10000] [--step 1000] [--work DIR]
       (needs valgrind, and nox and noxlib importable by this Python)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead  # the sibling script: generated suites and their venvs
import real_suites

COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    """The instructions ``argv`` ran, counted by callgrind (its own process only)."""
    grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    done = subprocess.run(
        [*grind, *argv], cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    found = COLLECTED.search(done.stderr)
    if done.returncode or found is None:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return int(found.group(1))


def counts(suite: bench_overhead.Suite) -> dict[str, int]:
    """Instructions of plain pytest and of the plugin's run, in the suite's session venv."""
    python = str(suite.folder / ".nox" / "tests" / "bin" / "python")
    argv = (python, "-m", "pytest", "-q", "tests")
    plain_env = bench_overhead.bench_env()
    run_dir = Path(tempfile.mkdtemp(prefix="noxlib-instructions-"))
    (run_dir / "part").mkdir()
    plugin_env = bench_overhead.bench_env(
        NOXLIB_RUN_DIR=str(run_dir), NOXLIB_PART_DIR=str(run_dir / "part")
    )
    plain = (*argv, "-p", "no:noxlib")
    # Once without callgrind: bytecode and pytest's rewritten test modules cached, as users have.
    subprocess.run(plain, cwd=suite.folder, env=plain_env, capture_output=True, check=True)
    return {
        "pytest": instructions(plain, suite.folder, plain_env),
        "plugin": instructions(argv, suite.folder, plugin_env),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=real_suites.CACHE / "overhead")
    parser.add_argument(
        "--nox-python", default=sys.executable, help="the interpreter that runs nox and noxlib"
    )
    args = parser.parse_args(argv)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: bytecode cached
    print("| tests | plain pytest per test | with the plugin | the plugin adds |")
    print("|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",") if s):
        low, high = (
            counts(bench_overhead.generated(n, args.work, args.nox_python))
            for n in (size, size + args.step)
        )
        plain = (high["pytest"] - low["pytest"]) / args.step
        plugin = (high["plugin"] - low["plugin"]) / args.step
        added = plugin - plain
        print(
            f"| {size:,} to {size + args.step:,} | {plain:,.0f} | {plugin:,.0f} "
            f"| {added:,.0f} ({100 * added / plain:.1f} %) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
