"""What the peak-memory sampler costs: its own seconds against the run's wall time.

The runner samples its process tree once a second while tests run and records the seconds the
sampling took (`memory_samples_seconds` in reports/ci_timings.jsonl). This script runs
`nox -R -s tests` and `nox -R -s tests-parallel` on a generated suite of about 20 s (sleeping
tests, and one holding 200 MB), ROUNDS times each, and prints the median share of wall time
spent sampling. The goal is at most 1 %.

Usage: python benchmarks/bench_sampler.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

SUITE = """
import time
import pytest

@pytest.mark.parametrize("i", range(40))
def test_sleeps(i):
    time.sleep(0.5)

def test_holds_memory():
    block = bytearray(200 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    time.sleep(1.5)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="noxlib-bench-sampler-"))
    (project / "tests").mkdir()
    (project / "tests" / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (project / "noxfile.py").write_text("import noxlib\n\nnoxlib.register_sessions()\n")
    (project / "pyproject.toml").write_text(
        '[tool.noxlib]\ninstall = []\n[tool.noxlib.groups.all]\npaths = ["tests"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    shares: dict[str, list[float]] = {"tests": [], "tests-parallel": []}
    for round_ in range(args.rounds + 1):
        for session, values in shares.items():
            argv = [sys.executable, "-m", "nox", *(["-R"] if round_ else []), "-s", session]
            subprocess.run(argv, cwd=project, env=env, capture_output=True, check=True)
            line = json.loads(
                (project / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1]
            )
            if round_:  # the first round makes the venvs
                share = line["memory_samples_seconds"] / line["wall_seconds"]
                values.append(share)
                print(
                    f"{session}: sampling {line['memory_samples_seconds']:.3f} s of "
                    f"{line['wall_seconds']:.1f} s ({share:.3%}); peak "
                    f"{line['peak_rss_bytes'] / 2**20:.0f} MiB",
                    flush=True,
                )
    for session, values in shares.items():
        print(
            f"{session}: median share of wall time spent sampling {statistics.median(values):.3%}"
        )


if __name__ == "__main__":
    main()
