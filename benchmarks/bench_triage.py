"""What triage costs: nothing on a green run, some serial reruns on a red one.

Writes a small project to a tmp dir (60 passing tests, 3 that fail when RED=1: one assertion,
one exception, one that fails only on odd attempts), makes its venv once, then runs each of
these REPEAT times, interleaved, with a reused venv (`nox -R -s tests-parallel`, 2 workers):

  green            every test passes; triage on (the default)
  green, no triage the same with `-- --no-triage`
  red              3 tests fail; triage reruns them twice
  red, no triage   the same with `-- --no-triage`

It prints the median wall time of each, and the median of the `triage` phase as the run's
ci_timings.jsonl recorded it. Triage's cost on a red run is "red" minus "red, no triage"; on a
green run it must be nil (the phase does no work).

Usage: python benchmarks/bench_triage.py [REPEAT]   (needs nox and noxlib importable)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PYPROJECT = """
[tool.noxlib]
install = []

[tool.noxlib.coverage]
enabled = false

[tool.noxlib.groups.suite]
paths = ["tests"]
"""
PASSING = "".join(f"def test_ok_{i}():\n    assert {i} + 1 > {i}\n\n\n" for i in range(60))
FAILING = """
import os
from pathlib import Path

RED = os.environ.get("RED") == "1"


def test_assertion():
    assert not RED, "RED=1 asked for a failure"


def test_exception():
    if RED:
        raise ValueError("RED=1 asked for an exception")


def test_odd_attempts():
    counter = Path(__file__).parent.parent / f".attempts-{os.environ.get('NOXLIB_RUN_ID')}"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    assert not RED or attempt % 2 == 0, f"attempt {attempt} is odd"
"""
RUNS = {
    "green": ({}, []),
    "green, no triage": ({}, ["--", "--no-triage"]),
    "red": ({"RED": "1"}, []),
    "red, no triage": ({"RED": "1"}, ["--", "--no-triage"]),
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("CI", None)
    return {**env, "PYTEST_WORKERS": "2", **extra}


def make_project(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "noxfile.py").write_text("import noxlib\nnoxlib.register_sessions()\n")
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (root / "tests" / "test_passing.py").write_text(PASSING)
    (root / "tests" / "test_failing.py").write_text(textwrap.dedent(FAILING))
    return root


def nox(project: Path, env: dict[str, str], args: list[str], reuse: bool = True) -> float:
    command = [sys.executable, "-m", "nox", *(["-R"] if reuse else []), "-s", "tests-parallel"]
    start = time.perf_counter()
    subprocess.run([*command, *args], cwd=project, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def triage_seconds(project: Path) -> float:
    line = json.loads((project / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1])
    return sum(p["seconds"] for p in line["phases"] if p["name"] == "triage")


def main(repeat: int) -> None:
    project = make_project(Path(tempfile.mkdtemp(prefix="noxlib-bench-triage-")) / "proj")
    nox(project, clean_env(), [], reuse=False)  # makes the venv and the durations file
    walls: dict[str, list[float]] = {name: [] for name in RUNS}
    phases: dict[str, list[float]] = {name: [] for name in RUNS}
    for _ in range(repeat):
        for name, (extra, args) in RUNS.items():  # interleaved: load drifts hit all alike
            walls[name].append(nox(project, clean_env(**extra), args))
            phases[name].append(triage_seconds(project))
    print(f"{repeat} rounds, interleaved; medians (min-max of the wall times)")
    print(f"{'run':<18} {'wall s':>8} {'triage phase s':>15}   range")
    for name in RUNS:
        wall, phase = statistics.median(walls[name]), statistics.median(phases[name])
        spread = f"{min(walls[name]):.2f}-{max(walls[name]):.2f}"
        print(f"{name:<18} {wall:>8.2f} {phase:>15.3f}   {spread}")
    red = statistics.median(walls["red"]) - statistics.median(walls["red, no triage"])
    green = statistics.median(walls["green"]) - statistics.median(walls["green, no triage"])
    print(f"triage's cost on the red run: {red:+.2f} s; on the green run: {green:+.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
