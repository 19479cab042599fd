"""What noxlib adds around pytest, on a small suite with a reused venv.

Runs, on a copy of tests/projects/basic, each of these REPEAT times and prints the medians:

  plain pytest        the session venv's pytest, run directly (what a user would otherwise run)
  bare nox -R         a nox session that only runs that same pytest, in a venv with the same test
                      tools but no noxlib (nox's own cost)
  noxlib -R, no cov   `nox -R -s tests` with coverage off: nox + noxlib's config, plan, reaping,
                      warden and reports
  noxlib -R           `nox -R -s tests` as shipped (coverage on)

noxlib's overhead is "noxlib -R, no cov" minus "bare nox -R": both pay for nox and pytest. It
also prints the time of noxlib's own phases inside the session, read from ci_timings.jsonl.

Usage: python benchmarks/bench_overhead.py [REPEAT]   (needs nox and noxlib importable)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASIC = ROOT / "tests" / "projects" / "basic"
BARE_NOXFILE = """
import nox

@nox.session(venv_backend="uv|virtualenv")
def bare(session):
    # The same test tools as noxlib's venv, so pytest's own start-up costs the same in both.
    session.install("pytest", "pytest-xdist", "coverage", "pytest-timeout", "psutil")
    session.run("python", "-m", "pytest", "tests/unit", "-m", "not slow", "-p", "no:xdist", "-q")
"""


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=clean_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def interleaved(repeat: int, commands: dict[str, tuple[list[str], Path]]) -> dict[str, float]:
    """Median wall time of each command; rounds interleave them so load drifts hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (command, cwd) in commands.items():
            times[name].append(timed(command, cwd))
    return {name: statistics.median(values) for name, values in times.items()}


def phases_outside_pytest(project: Path) -> float:
    """Median of (wall - pytest phase) over the runs logged in the project's ci_timings.jsonl:
    the time noxlib's own phases took inside the nox session."""
    lines = (project / "reports" / "ci_timings.jsonl").read_text().splitlines()
    runs = [json.loads(line) for line in lines[1:]]  # the first one installed the venv
    return statistics.median(
        run["wall_seconds"] - sum(p["seconds"] for p in run["phases"] if p["name"] == "pytest")
        for run in runs
    )


def main(repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="noxlib-bench-"))
    project = Path(shutil.copytree(BASIC, work / "basic"))
    nocov = Path(shutil.copytree(BASIC, work / "nocov"))
    pyproject = nocov / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('source = ["mylib"]', "enabled = false"))
    bare = Path(shutil.copytree(BASIC, work / "bare"))
    (bare / "noxfile.py").write_text(BARE_NOXFILE)
    nox = [sys.executable, "-m", "nox"]
    for where, session in ((project, "tests"), (nocov, "tests"), (bare, "bare")):
        subprocess.run([*nox, "-s", session], cwd=where, env=clean_env(), check=True,
                       capture_output=True)  # fmt: skip
    venv_python = str(project / ".nox" / "tests" / "bin" / "python")
    plain = [venv_python, "-m", "pytest", "tests/unit", "-m", "not slow", "-p", "no:xdist", "-q"]
    rows = interleaved(
        repeat,
        {
            "plain pytest": (plain, project),
            "bare nox -R": ([*nox, "-R", "-s", "bare"], bare),
            "noxlib -R, no cov": ([*nox, "-R", "-s", "tests"], nocov),
            "noxlib -R": ([*nox, "-R", "-s", "tests"], project),
        },
    )
    print(f"median of {repeat} runs, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    for name, seconds in rows.items():
        print(f"{name:20s} {seconds:6.2f} s")
    overhead = rows["noxlib -R, no cov"] - rows["bare nox -R"]
    coverage_cost = rows["noxlib -R"] - rows["noxlib -R, no cov"]
    print(f"noxlib overhead (no cov - bare nox): {overhead:.2f} s")
    print(f"coverage cost (noxlib - no cov):     {coverage_cost:.2f} s")
    inside = phases_outside_pytest(nocov)
    print(f"noxlib phases inside the session (wall - pytest phase, no cov): {inside:.3f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
