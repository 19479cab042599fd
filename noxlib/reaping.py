"""Reaping: end every process of a run, and nothing else. (First cut; grown by issue 3.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from noxlib.runs import RUN_ID_ENV, Run

Log = Callable[[str], object]


def _run_processes(run_id: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(RUN_ID_ENV) == run_id:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def reap_run(run: Run, log: Log, *, grace: float) -> None:
    procs = _run_processes(run.run_id)
    for proc in procs:
        log(f"noxlib: ending leftover {proc.name()} (pid {proc.pid})")
        proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        proc.kill()


def reap_stale_runs(state_dir: Path, log: Log, *, grace: float, dry_run: bool = False) -> None:
    return None


@dataclass
class Warden:
    @classmethod
    def start(cls, run: Run, *, grace: float) -> Warden:
        return cls()

    def stop(self) -> None:
        return None
