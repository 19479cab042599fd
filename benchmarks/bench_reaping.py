"""Benchmark of reaping (not a test; figures go to docs/benchmarks.md, "Reaping").

1. SIGKILL of the runner -> the last process of its run gone: a stand-in for nox opens a run,
   starts its warden and servers (setsid, double-fork daemon, nohup, env -i + ledger, a
   pytest-like process that exits on SIGTERM; optionally one that ignores SIGTERM), then is
   SIGKILLed. We poll until every pid is gone. The goal is 2 s.
2. A pre-hook sweep (``reap_stale_runs``) with no dead run, and with one dead run whose runner
   and warden were both SIGKILLed, leaving 50 orphans.

    python benchmarks/bench_reaping.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from noxlib import reaping

GOAL_SECONDS = 2.0
RUNNER = textwrap.dedent(
    r"""
    import json, os, subprocess, sys, time
    from pathlib import Path
    from noxlib import reaping
    from noxlib.reaping import runs

    state, report, kinds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
    run = runs.start_run(state)
    warden = reaping.Warden.start(run, grace=1.0)
    env = {**os.environ, **run.env()}
    SLEEP = ["sleep", "120"]
    PIPE = subprocess.PIPE
    DAEMON = ("import os\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\n"
              "os.write(1, str(os.getpid()).encode()); os.close(1)\nos.execvp('sleep', SLEEP)\n")
    PYTEST = "import sys, time\nprint('ready', flush=True)\ntime.sleep(120)\n"
    STUBBORN = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\ntime.sleep(120)\n")

    def ready(cmd, **kw):
        proc = subprocess.Popen(cmd, env=env, stdout=PIPE, **kw)
        proc.stdout.readline()
        return proc.pid

    def spawn(kind):
        if kind == "setsid":
            return subprocess.Popen(SLEEP, env=env, start_new_session=True).pid
        if kind == "daemon":
            code = DAEMON.replace("SLEEP", repr(SLEEP))
            return int(subprocess.run([sys.executable, "-c", code], env=env, stdout=PIPE).stdout)
        if kind == "nohup":
            script = "nohup sleep 120 >/dev/null 2>&1 & echo $!"
            return int(subprocess.run(["sh", "-c", script], env=env, stdout=PIPE).stdout)
        if kind == "envless":
            pid = subprocess.Popen(["env", "-i", *SLEEP], start_new_session=True).pid
            reaping.record_process(run.dir, pid)
            return pid
        if kind == "pytest":
            return ready([sys.executable, "-c", PYTEST])
        if kind == "stubborn":
            return ready([sys.executable, "-c", STUBBORN], start_new_session=True)
        raise ValueError(kind)

    pids = [spawn(kind) for kind in kinds]
    report.write_text(json.dumps({"pids": pids, "warden": warden.process.pid}))
    time.sleep(300)
    """
)


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class Runner:
    def __init__(self, work: Path, kinds: list[str]) -> None:
        script = work / "runner.py"
        script.write_text(RUNNER)
        self.report = work / f"report-{time.monotonic_ns()}.json"
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(work / "state"), str(self.report), ",".join(kinds)],
            start_new_session=True,
        )
        while not self.report.exists():
            if self.process.poll() is not None:
                raise SystemExit("the runner failed to start")
            time.sleep(0.01)
        time.sleep(0.05)  # the report is written in one go, but let the write finish
        facts = json.loads(self.report.read_text())
        self.procs = [psutil.Process(pid) for pid in facts["pids"]]
        self.warden = psutil.Process(facts["warden"])

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def cleanup(self) -> None:
        # Let the warden finish (it forgets the run after its last process is gone) before
        # anything left is killed by pid.
        wait_gone([self.warden], 10)
        for proc in [*self.procs, self.warden]:
            if not gone(proc):  # psutil refuses a reused pid
                proc.kill()


def wait_gone(procs: list[psutil.Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(not gone(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.01)


def kill_to_gone(work: Path, kinds: list[str]) -> float:
    runner = Runner(work, kinds)
    try:
        start = time.perf_counter()
        runner.kill()
        left = runner.procs
        while left:
            left = [p for p in left if not gone(p)]
            if time.perf_counter() - start > 30:
                raise SystemExit(f"processes survived 30 s: {[p.pid for p in left]}")
            time.sleep(0.002)
        return time.perf_counter() - start
    finally:
        runner.cleanup()


def sweep_seconds(work: Path, orphans: int) -> float:
    runner = None
    if orphans:
        runner = Runner(work, ["setsid"] * orphans)
        runner.warden.kill()
        wait_gone([runner.warden], 10)
        runner.kill()
    try:
        start = time.perf_counter()
        reaped = reaping.reap_stale_runs(work / "state", lambda _: None, grace=1.0)
        seconds = time.perf_counter() - start
        assert len(reaped) == orphans, f"reaped {len(reaped)} of {orphans}"
        return seconds
    finally:
        if runner:
            runner.cleanup()


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<58} median {statistics.median(samples):6.3f} s   "
        f"max {max(samples):6.3f} s   (n={len(samples)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{platform.platform()}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{len(psutil.pids())} processes, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)
    servers = ["pytest", "setsid", "setsid", "daemon", "nohup", "envless"]
    stubborn = [*servers, "stubborn"]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, kinds in (
            ("SIGKILL of runner -> 6 processes gone (all obey SIGTERM)", servers),
            ("SIGKILL of runner -> 7 gone (one ignores SIGTERM; grace 1 s)", stubborn),
        ):
            samples = [kill_to_gone(Path(tmp), kinds) for _ in range(args.repeat)]
            worst = max(worst, *samples)
            report(label, samples)
        for orphans in (0, 50):
            samples = [sweep_seconds(Path(tmp), orphans) for _ in range(args.repeat)]
            what = f"a dead run with {orphans} orphans" if orphans else "no dead run"
            report(f"pre-hook sweep, {what}", samples)
    verdict = "met" if worst < GOAL_SECONDS else "MISSED"
    print(f"goal: all processes of a SIGKILLed run gone within {GOAL_SECONDS:g} s: {verdict}")
    return 0 if worst < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
