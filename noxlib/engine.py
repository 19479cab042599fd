"""The process engine: runs the parts of a run, each as its own pytest process.

Pure mechanics with subprocess: what a part runs (argv, environment) is decided above, in the
plan and the nox boundary. The engine keeps at most ``slots`` processes running, sends a part's
output to its log file (or straight to the terminal when it runs alone), and when a process dies
in the middle of its tests it records the test it was running as ``crashed`` and starts a new
process for the tests it had not reached yet.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from noxlib.idfile import read_ids, write_ids
from noxlib.memory import Sampler
from noxlib.merge import read_results
from noxlib.outcomes import Outcome, RunStatus
from noxlib.parts import PART_DIR_ENV, SELECT_ENV, PartFiles
from noxlib.timeouts import banner_excerpt, main_thread_frames, thread_timeout
from noxlib.words import plural

POLL_SECONDS = 0.1
# After Ctrl-C or SIGTERM each pytest process gets SIGTERM (the plugin turns it into a clean
# KeyboardInterrupt) and this long to tear its fixtures down before SIGKILL.
SHUTDOWN_SECONDS = 30.0
# A part whose processes keep dying is given up after this many processes.
MAX_ATTEMPTS = 50
# A part past its time limit gets SIGTERM (its fixtures tear down) and this long before SIGKILL.
TIMEOUT_GRACE = 5.0


@dataclass(frozen=True)
class Part:
    """One pytest process's worth of the run: its name, command, environment and folder.

    ``passthrough`` sends its output to the terminal (a part that runs alone); otherwise it goes
    to the part's log file. ``timeout`` is the seconds the part may take before its whole
    process tree is ended.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    dir: Path
    passthrough: bool = False
    timeout: float | None = None

    @property
    def files(self) -> PartFiles:
        return PartFiles(self.dir)


@dataclass
class PartOutcome:
    """How a part ended: ``status`` is passed, failed, crashed, timeout, error or interrupted;
    ``peak_rss`` the most memory its process tree held at once, in bytes."""

    part: Part
    status: RunStatus = RunStatus.NOT_STARTED
    exit_code: int | None = None
    seconds: float = 0.0
    attempts: int = 0
    crashed: list[str] = field(default_factory=list)
    # Tests whose process pytest-timeout's thread method ended: timeouts, not crashes.
    timed_out: list[str] = field(default_factory=list)
    problem: str = ""  # why a part ended without running its tests, for the summary
    # A death no test is blamed for (an xdist controller's, or one between two tests): the
    # part stays crashed even when the relaunch passes, since something killed a process.
    unblamed_death: str = ""
    # Why tests of its share may have no result (its time limit, the relaunch cap, -x): the
    # reason the books give each such test.
    unfinished: str = ""
    peak_rss: int = 0


@dataclass
class _Running:
    part: Part
    popen: subprocess.Popen[bytes]
    started: float
    meta_offset: int
    timed_out: bool = False


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
    running: list[_Running] = []
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
                again = _finish(proc, outcome)
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


def _wait_for_an_end(running: Sequence[_Running], timeout: float) -> None:
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


def _enforce_timeout(proc: _Running) -> None:
    """End the whole process tree of a part past its time limit (once)."""
    limit = proc.part.timeout
    if proc.timed_out or limit is None or time.monotonic() - proc.started < limit:
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


def _launch(part: Part, outcome: PartOutcome) -> _Running:
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
    return _Running(part, popen, time.monotonic(), offset)


def _finish(proc: _Running, outcome: PartOutcome) -> Part | None:
    """Record how ``proc`` ended; return the part to run again for its remaining tests."""
    outcome.seconds += time.monotonic() - proc.started
    outcome.exit_code = proc.popen.returncode
    files = proc.part.files
    events = files.events(proc.meta_offset)
    finished = [e for e in events if e.get("event") == "finished"]
    if proc.timed_out:  # ended by us: its pytest may still have finished "interrupted"
        _timed_out(proc, outcome, read_ids(files.share))
    elif finished:
        outcome.status = _finished_status(finished[-1], events, files, outcome)
        if finished[-1].get("stopped"):
            outcome.unfinished = f"pytest stopped early ({finished[-1]['stopped']})"
    elif not any(e.get("event") == "selected" for e in events):
        outcome.status = RunStatus.CRASHED if outcome.crashed else RunStatus.ERROR
        outcome.problem = f"pytest {_how(outcome.exit_code)} before it started its tests"
        if not proc.part.passthrough:
            outcome.problem += f"; see {files.log}"
    else:
        return _after_death(proc, outcome, events)
    return None


def _finished_status(
    finished: Mapping[str, object],
    events: list[dict[str, object]],
    files: PartFiles,
    outcome: PartOutcome,
) -> RunStatus:
    """The status of a part whose last process finished its pytest session."""
    status = _status_of(int(str(finished.get("exitstatus", outcome.exit_code))))
    if status is RunStatus.INTERRUPTED and _collection_failed(files):
        status = RunStatus.ERROR  # pytest says "Interrupted: 1 error during collection"
        outcome.unfinished = (
            "pytest stopped at a collection error before any test ran; "
            "--continue-on-collection-errors runs the rest"
        )
    if status is RunStatus.INTERRUPTED and any(e.get("what") == "unrecoverable" for e in events):
        status = RunStatus.FAILED  # the plugin stopped a batch whose server cannot start
    if status is RunStatus.INTERRUPTED:
        return status
    # A part that lost a test to a crash or a thread-method timeout says so, however its last
    # process ended.
    if outcome.crashed:
        return RunStatus.CRASHED
    if outcome.unblamed_death:
        outcome.problem = outcome.unblamed_death
        return RunStatus.CRASHED
    if outcome.timed_out and status is RunStatus.PASSED:
        return RunStatus.FAILED
    return status


def _after_death(
    proc: _Running, outcome: PartOutcome, events: list[dict[str, object]]
) -> Part | None:
    """A process that died among its tests: the test it was running (the last one started
    that has no result) is recorded as crashed or timed out, and the tests it had not reached
    go to a new process, up to MAX_ATTEMPTS processes."""
    files, code = proc.part.files, outcome.exit_code
    done = {str(r["nodeid"]) for r in read_results(files.results)}
    running = [nodeid for nodeid in read_ids(files.started) if nodeid not in done]
    controller = _was_xdist_controller(events)
    # A dead xdist controller's record lags its workers (their starts reach it by message), and
    # two workers ran a test each: which test killed it is unknown. No test is blamed; they and
    # the rest run again in one serial process, where a death names its test exactly.
    victim = running[-1] if running and not controller else None
    rest = [nodeid for nodeid in read_ids(files.share) if nodeid not in done and nodeid != victim]
    outcome.status = RunStatus.CRASHED
    if controller:
        outcome.problem = outcome.unblamed_death = (
            f"its xdist controller {_how(code)} while its workers ran "
            f"{plural(len(running), 'test')} ({', '.join(running) or 'none recorded'}): they "
            "and the rest ran again in one serial process"
        )
    elif victim is None:
        outcome.problem = outcome.unblamed_death = f"pytest {_how(code)} between two tests"
    else:
        limit = thread_timeout(events, victim, time.time())
        spent = time.monotonic() - proc.started
        if limit is None:
            outcome.crashed.append(victim)
            outcome.problem = f"{victim} crashed: its pytest {_how(code)}"
            _record_crash(files, victim, proc.part.name, code, spent)
        else:
            outcome.timed_out.append(victim)
            outcome.problem = f"{victim} timed out: pytest-timeout's thread method ended its pytest"
            _record_thread_timeout(proc.part, victim, limit)
            outcome.status = RunStatus.CRASHED if outcome.crashed else RunStatus.FAILED
    if not rest:
        return None
    if outcome.attempts >= MAX_ATTEMPTS:
        outcome.unfinished = (
            f"the relaunch cap: its part's pytest died {outcome.attempts} times, the cap is "
            f"{MAX_ATTEMPTS} processes"
        )
        return None
    write_ids(files.select, rest)
    files.set_aside(outcome.attempts)
    argv = (*proc.part.argv, "-n", "0") if controller else proc.part.argv  # the last -n wins
    return replace(proc.part, argv=argv, env={**proc.part.env, SELECT_ENV: str(files.select)})


def _was_xdist_controller(events: list[dict[str, object]]) -> bool:
    """Whether the process whose ``events`` these are chose its tests as an xdist controller
    (its workers collected them)."""
    return any(e.get("event") == "selected" and e.get("how") == "xdist" for e in events)


def _timed_out(proc: _Running, outcome: PartOutcome, share: list[str]) -> None:
    """A part ended by its time limit: the test it was running is its ``timeout``, and the
    tests after it did not run."""
    files = proc.part.files
    outcome.status = RunStatus.TIMEOUT
    limit = f"{proc.part.timeout:g} s"
    done = {str(r["nodeid"]) for r in read_results(files.results)}
    running = [nodeid for nodeid in read_ids(files.started) if nodeid not in done]
    outcome.unfinished = f"its part hit its time limit of {limit}"
    if not running:
        outcome.problem = f"ended after its time limit of {limit}, with no test running"
        return
    victim = running[-1]
    left = [nodeid for nodeid in share if nodeid not in done and nodeid != victim]
    outcome.problem = f"ended after its time limit of {limit} while {victim} ran"
    line = {
        "nodeid": victim,
        "outcome": Outcome.TIMEOUT.value,
        "duration": round(time.monotonic() - proc.started, 3),
        "worker": proc.part.name,
        "when": "call",
        "longrepr": f"Part {proc.part.name} {outcome.problem}; noxlib ended its process tree. "
        f"{len(left)} test(s) after it did not run.",
    }
    with files.results.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _status_of(exitstatus: int) -> RunStatus:
    # pytest's exit codes: 0 all passed, 5 nothing to run (a shard may get nothing), 2 stopped.
    if exitstatus in (0, 5):
        return RunStatus.PASSED
    if exitstatus == 2:
        return RunStatus.INTERRUPTED
    return RunStatus.FAILED if exitstatus == 1 else RunStatus.ERROR


def _collection_failed(files: PartFiles) -> bool:
    return any(r.get("when") == "collect" for r in read_results(files.results))


def _how(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"died with {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _record_crash(files: PartFiles, nodeid: str, part: str, code: int | None, spent: float) -> None:
    """Write the test a dead process was running into the part's results, as crashed."""
    line = {
        "nodeid": nodeid,
        "outcome": Outcome.CRASHED.value,
        "duration": 0.0,
        "worker": part,
        "when": "call",
        "longrepr": f"The pytest process of part {part} {_how(code)} while this test ran "
        f"({spent:.1f} s into the process). Its output is in {files.log}.",
    }
    with files.results.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _record_thread_timeout(part: Part, nodeid: str, limit: float) -> None:
    """Write test ``nodeid`` into the part's results as a timeout: pytest-timeout's thread
    method ended its process, after printing every thread's stack (quoted from the log)."""
    excerpt = "" if part.passthrough else banner_excerpt(_log_tail(part.files.log))
    where = "Its stacks are above, in the output." if part.passthrough else ""
    line: dict[str, object] = {
        "nodeid": nodeid,
        "outcome": Outcome.TIMEOUT.value,
        "duration": limit,
        "worker": part.name,
        "when": "call",
        "longrepr": f"Timeout (>{limit:g}s) from pytest-timeout (thread method): it ended the "
        f"pytest process of part {part.name}. {where}\n{excerpt}".rstrip(),
    }
    frames = main_thread_frames(excerpt)
    if frames:
        line["frames"] = frames
    with part.files.results.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _log_tail(path: Path, size: int = 256 * 1024) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")
    return ""


def _stop_all(running: list[_Running], outcomes: dict[Path, PartOutcome]) -> None:
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
