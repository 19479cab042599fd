"""How a part's pytest process ended, read after it exited: its status, and when it died
among its tests, which test it was running and what it had not reached yet.

The engine (engine.py) runs the processes; this module reads what each one left in its part's
folder (events, share, started and results lines) and decides what the books will say:
``crashed`` or ``timeout`` for the test a dead process was running, and the part to start
again for the rest.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from noxlib.idfile import read_ids, write_ids
from noxlib.merge import read_results
from noxlib.outcomes import Outcome, RunStatus
from noxlib.partrun import Part, PartOutcome, Running
from noxlib.parts import SELECT_ENV, PartFiles
from noxlib.timeouts import banner_excerpt, main_thread_frames, thread_timeout
from noxlib.words import plural


def finish(proc: Running, outcome: PartOutcome) -> Part | None:
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
    proc: Running, outcome: PartOutcome, events: list[dict[str, object]]
) -> Part | None:
    """A process that died among its tests: the test it was running (the last one started
    that has no result) is recorded as crashed or timed out, and the tests it had not reached
    go to a new process, up to the part's relaunch cap of processes."""
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
    if outcome.attempts >= proc.part.relaunch_cap:
        outcome.unfinished = (
            f"the relaunch cap: its part's pytest died {outcome.attempts} times, the cap is "
            f"{proc.part.relaunch_cap} processes (relaunch-cap)"
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


def _timed_out(proc: Running, outcome: PartOutcome, share: list[str]) -> None:
    """A part ended by its time limit: the test it was running is its ``timeout``, and the
    tests after it did not run."""
    files = proc.part.files
    outcome.status = RunStatus.TIMEOUT
    done = {str(r["nodeid"]) for r in read_results(files.results)}
    running = [nodeid for nodeid in read_ids(files.started) if nodeid not in done]
    if proc.past_its_limit is not None:
        victim = proc.past_its_limit
        outcome.unfinished = f"{victim} ran past the limit of {proc.part.test_timeout:g} s a test"
        outcome.problem = f"ended when {outcome.unfinished}"
    elif running:
        victim = running[-1]
        limit = f"{proc.part.timeout:g} s"
        outcome.unfinished = f"its part hit its time limit of {limit}"
        outcome.problem = f"ended after its time limit of {limit} while {victim} ran"
    else:
        limit = f"{proc.part.timeout:g} s"
        outcome.unfinished = f"its part hit its time limit of {limit}"
        outcome.problem = f"ended after its time limit of {limit}, with no test running"
        return
    left = [nodeid for nodeid in share if nodeid not in done and nodeid != victim]
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
