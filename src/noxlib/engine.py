"""The process engine: runs the parts of a run, each as its own pytest process.

Pure mechanics with subprocess: what a part runs (argv, environment) is decided above, in the
plan and the nox boundary. The engine keeps at most ``slots`` processes running, sends a part's
output to its log file (or straight to the terminal when it runs alone), and when a process dies
in the middle of its tests it starts a new process for the tests it had not reached yet; what
a process's end means (the test it was running, what is left) is read in endings.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from noxlib.endings import finish
from noxlib.jsonlines import Tail
from noxlib.memory import Sampler
from noxlib.merge import read_results
from noxlib.outcomes import RunStatus
from noxlib.partrun import Part, PartOutcome, Running
from noxlib.parts import PART_DIR_ENV

POLL_SECONDS = 0.1
# After Ctrl-C or SIGTERM each pytest process gets SIGTERM (the plugin turns it into a clean
# KeyboardInterrupt) and this long to tear its fixtures down before SIGKILL.
SHUTDOWN_SECONDS = 30.0
# A part past its time limit gets SIGTERM (its fixtures tear down) and this long before SIGKILL.
TIMEOUT_GRACE = 5.0


Tick = Callable[[float], object]
OnEnd = Callable[[PartOutcome], object]


def run_parts(
    parts: Sequence[Part],
    slots: int,
    *,
    tick: Tick = lambda elapsed: None,
    on_end: OnEnd = lambda outcome: None,
    sampler: Sampler | None = None,
) -> list[PartOutcome]:
    """Run ``parts`` with at most ``slots`` processes at a time; return how each ended, in order.

    ``tick(elapsed seconds)`` is called about every POLL_SECONDS while processes run (the
    progress line). ``on_end(outcome)`` is called when a part has ended, before its slot takes
    the next part (the dirty-state check of batches). ``sampler`` samples the memory of the
    running parts. KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it) stops every process
    gracefully, marks unfinished parts ``interrupted`` and is raised again.
    """
    # Keyed by folder: two parts may share a name (one file in two batched groups).
    outcomes = {part.dir: PartOutcome(part) for part in parts}
    waiting = list(parts)
    running: list[Running] = []
    start = time.monotonic()
    try:
        while waiting or running:
            while waiting and len(running) < max(1, slots):
                part = waiting.pop(0)
                running.append(_launch(part, outcomes[part.dir]))
            _wait_for_an_end(running, POLL_SECONDS)
            if sampler is not None:
                sampler.maybe_sample({r.part.name: r.popen.pid for r in running})
            for proc in running:
                _enforce_timeout(proc)
            for proc in [r for r in running if r.popen.poll() is not None]:
                running.remove(proc)
                outcome = outcomes[proc.part.dir]
                again = finish(proc, outcome)
                if again is not None:
                    waiting.insert(0, again)
                    continue
                if sampler is not None:
                    outcome.peak_rss = sampler.peaks.get(proc.part.name, 0)
                on_end(outcome)
            tick(time.monotonic() - start)
    except KeyboardInterrupt:
        _stop_all(running, outcomes)
        raise
    return [outcomes[part.dir] for part in parts]


def _wait_for_an_end(running: Sequence[Running], timeout: float) -> None:
    """Return when a process of ``running`` ends, or after ``timeout`` seconds. On Linux a
    process's end is seen at once (a pidfd per process, in one select): a plain sleep would add
    up to ``timeout`` to every part, a third of a small suite's whole run."""
    fds: list[int] = []
    try:
        for proc in running:
            fds.append(os.pidfd_open(proc.popen.pid))
        select.select(fds, [], [], timeout)
    except (AttributeError, OSError):  # no pidfd_open here (macOS, a kernel before 5.3)
        time.sleep(timeout)
    finally:
        for fd in fds:
            os.close(fd)


def _enforce_timeout(proc: Running) -> None:
    """End the whole process tree of a part past its time limit, or past its limit for the
    test it is running (once)."""
    if proc.timed_out:
        return
    now = time.monotonic()
    limit = proc.part.timeout
    past_the_parts = limit is not None and now - proc.started >= limit
    if not (past_the_parts or _past_test_limit(proc, now)):
        return
    proc.timed_out = True
    import psutil

    from noxlib.reaping import processes

    try:
        root = psutil.Process(proc.popen.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    processes.end(family, TIMEOUT_GRACE, proc.popen)


def _past_test_limit(proc: Running, now: float) -> bool:
    """Whether the test ``proc`` runs has run past the part's ``test_timeout``; a test whose
    result has landed is not (its process may be tearing down)."""
    limit = proc.part.test_timeout
    if limit is None:
        return False
    for nodeid in proc.starts.new_lines():
        if isinstance(nodeid, str):
            proc.current, proc.current_since = nodeid, now
    if proc.current is None or now - proc.current_since < limit:
        return False
    if proc.current in {str(r.get("nodeid")) for r in read_results(proc.part.files.results)}:
        proc.current = None
        return False
    proc.past_its_limit = proc.current
    return True


def _launch(part: Part, outcome: PartOutcome) -> Running:
    files = part.files
    files.dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        files.share.unlink()  # a share left by an earlier process would name the wrong tests
    offset = files.meta.stat().st_size if files.meta.exists() else 0
    env = {**part.env, PART_DIR_ENV: str(part.dir)}
    outcome.attempts += 1
    if part.passthrough:
        popen = subprocess.Popen(part.argv, env=env)
    else:
        with files.log.open("ab") as log:
            popen = subprocess.Popen(
                part.argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
    outcome.status = RunStatus.RUNNING
    starts = Tail(files.started, files.started.stat().st_size if files.started.exists() else 0)
    return Running(part, popen, time.monotonic(), offset, starts)


def _stop_all(running: list[Running], outcomes: dict[Path, PartOutcome]) -> None:
    """SIGTERM every running pytest, wait for their teardown, SIGKILL what is left."""
    for proc in running:
        with contextlib.suppress(OSError):
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    for proc in running:
        try:
            proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()
        outcome = outcomes[proc.part.dir]
        outcome.seconds += time.monotonic() - proc.started
        outcome.exit_code = proc.popen.returncode
    for outcome in outcomes.values():
        if outcome.status in (RunStatus.RUNNING, RunStatus.NOT_STARTED):
            outcome.status = RunStatus.INTERRUPTED
            outcome.unfinished = "the run was interrupted"
