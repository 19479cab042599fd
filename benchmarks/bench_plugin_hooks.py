"""The CPU time noxlib's plugin spends in its own hooks, per test, by suite size.

Wall-time differences between whole runs carry a noise of ±20 to ±30 µs a test on this machine,
more than the plugin costs; callgrind is exact but too slow for 200,000 tests. This measures
inside one run instead: each hook of the plugin's parts (the results recorder, the part
selector, the timer and server notes, the module's own collection hooks) is wrapped to add up
the thread's CPU time (`time.thread_time`, which time spent waiting for a core does not
count) it takes. It runs pytest with the plugin switched on as a part of a run switches it on,
in noxlib's session venv of generated suites (benchmarks/bench_overhead.py makes them), and
prints per size the µs a test of each hook and of all of them. A cost that grows with the
suite shows as a figure that grows down the table. The wrappers' own cost (two clock reads a
call, about 0.1 µs) is in the figures.

Usage: python benchmarks/bench_plugin_hooks.py [--sizes 1000,10000,100000,200000] [--work DIR]
       (needs nox and noxlib importable by this Python)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead  # the sibling script: generated suites and their venvs
import real_suites

# Loaded into the pytest process with -p before noxlib's plugin registers its parts: it wraps
# their classes' hook methods, so the instances registered later carry the wrappers.
TIMER_PLUGIN = """
import atexit, functools, json, os, time
from noxlib.plugin import order, results, selection, servers
import noxlib.plugin as package

spent = {}

def timed(name, function):
    @functools.wraps(function)  # keeps pluggy's tryfirst/trylast/wrapper marks
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.thread_time() - start
    return wrapper

for owner in (results.ResultsRecorder, results.TimerNotes, selection.PartSelector,
              servers.ServerNotes):
    for attr in list(vars(owner)):
        if attr.startswith("pytest_"):  # none of these is a wrapper hook (a generator)
            name = f"{owner.__name__}.{attr.removeprefix('pytest_')}"
            setattr(owner, attr, timed(name, getattr(owner, attr)))
for attr in ("pytest_collection_modifyitems", "pytest_collection_finish"):
    name = f"plugin.{attr.removeprefix('pytest_')}"
    setattr(package, attr, timed(name, getattr(package, attr)))

atexit.register(lambda: open(os.environ["HOOK_TIMES"], "w").write(json.dumps(spent)))
"""


def hook_seconds(suite: bench_overhead.Suite) -> dict[str, float]:
    """Seconds of CPU time in each timed hook during one run of ``suite``."""
    work = Path(tempfile.mkdtemp(prefix="noxlib-hooks-"))
    (work / "part").mkdir()
    (work / "hooktimer.py").write_text(TIMER_PLUGIN)
    times = work / "times.json"
    env = bench_overhead.bench_env(
        NOXLIB_RUN_DIR=str(work),
        NOXLIB_PART_DIR=str(work / "part"),
        HOOK_TIMES=str(times),
        PYTHONPATH=str(work),
    )
    python = str(suite.folder / ".nox" / "tests" / "bin" / "python")
    argv = [python, "-m", "pytest", "-q", "-p", "hooktimer", "tests"]
    subprocess.run(argv, cwd=suite.folder, env=env, capture_output=True, check=True)
    return dict(json.loads(times.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,200000")
    parser.add_argument("--work", type=Path, default=real_suites.CACHE / "overhead")
    parser.add_argument(
        "--nox-python", default=sys.executable, help="the interpreter that runs nox and noxlib"
    )
    args = parser.parse_args(argv)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: bytecode cached
    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        suite = bench_overhead.generated(size, args.work, args.nox_python)
        hook_seconds(suite)  # once uncounted: bytecode and rewritten test modules cached
        rows.append((size, hook_seconds(suite)))
    names = sorted({name for _, spent in rows for name in spent})
    print("| tests | all hooks | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for size, spent in rows:
        cells = " | ".join(f"{1e6 * spent.get(n, 0.0) / size:.2f}" for n in names)
        print(f"| {size:,} | {1e6 * sum(spent.values()) / size:.2f} | {cells} |", flush=True)
    print("(µs of CPU time a test, in each hook of the plugin)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
