"""What triage costs on a red run of a real suite: attrs 26.1.0 with one injected
order-dependent pair (a polluter that leaks an environment variable, and a victim in another
file that fails when it is set, with most of the suite running between them).

In interleaved rounds, with reused venvs, coverage off and the suite's one failing test
deselected on both sides (see real_suites.py):

  plain pytest       the red suite, as a user would run it (the victim fails)
  noxlib, no triage  nox -R -s tests -- --no-triage
  noxlib, triage     nox -R -s tests (the default): the victim rerun alone twice, then in its
                     company, then the polluter search

It prints the medians, the triage phase as ci_timings.jsonl recorded it, the verdict and how
many reruns the verdict needed.

Usage: python benchmarks/bench_triage_attrs.py [ROUNDS] [FOLDER]
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import real_suites

POLLUTER = "tests/test_1_noxlib_polluter.py"
VICTIM = "tests/test_zz_noxlib_victim.py"
FILES = {
    POLLUTER: "import os\n\n\ndef test_leaks():\n    os.environ['NOXLIB_BENCH_LEAK'] = '1'\n",
    VICTIM: "import os\n\n\ndef test_victim():\n    assert 'NOXLIB_BENCH_LEAK' not in os.environ\n",
}


def timed(command: real_suites.Command) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        command.argv, check=False, cwd=command.cwd, env=command.env, capture_output=True, text=True
    )
    return time.perf_counter() - started, done.stdout + done.stderr


def main(rounds: int, dest: Path) -> None:
    real_suites.prepare("attrs", dest)
    for path, text in FILES.items():
        (dest / path).write_text(text)
    commands = {
        "plain pytest": real_suites.plain_pytest("attrs", dest, "-p", "no:cacheprovider"),
        "noxlib, no triage": real_suites.nox(
            "attrs", dest, "-R", "-s", "tests", options=("--no-triage",)
        ),
        "noxlib, triage": real_suites.nox("attrs", dest, "-R", "-s", "tests"),
    }
    # Make the session venv once (red: its exit status is not the point).
    timed(real_suites.nox("attrs", dest, "-s", "tests", options=("--no-triage",)))
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    phase: list[float] = []
    verdicts: list[str] = []
    for _ in range(rounds):
        for name, command in commands.items():
            # Each run a first one: the last run's failures would go first, and the victim
            # run first passes (no polluter before it).
            (dest / "reports/ci_timings.jsonl").unlink(missing_ok=True)
            spent, output = timed(command)
            seconds[name].append(spent)
            if name == "noxlib, triage":
                line = json.loads((dest / "reports/ci_timings.jsonl").read_text().splitlines()[-1])
                phase.append(next(p["seconds"] for p in line["phases"] if p["name"] == "triage"))
                found = re.findall(r"triage: (\S+victim\S*): (.*)", output)
                verdicts += [v for _, v in found]
    plain = statistics.median(seconds["plain pytest"])
    print(f"attrs {real_suites.SUITES['attrs'].version}, {rounds} rounds, medians:")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:18} {median:6.1f} s  ({median / plain:.2f}x plain pytest)")
    print(f"  triage phase       {statistics.median(phase):6.1f} s")
    for verdict in sorted(set(verdicts)):
        print(f"  verdict: {verdict}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    folder = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/noxlib-bench-triage-attrs")
    main(count, folder)
