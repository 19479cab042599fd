"""Triage's serial reruns: each round is one fresh pytest process over the failed tests.

Run through the engine like any part (so a rerun whose test kills its process still reruns
the rest), in the run's folder, with the run's environment minus coverage. The reruns write
their own results files; nothing of theirs reaches the run's counts, durations or coverage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib import triage
from noxlib.durations import file_of
from noxlib.engine import Part, run_parts
from noxlib.idfile import write_ids
from noxlib.merge import read_results
from noxlib.outcomes import RunStatus
from noxlib.parts import SELECT_ENV
from noxlib.reaping.runs import PART_NAME_ENV

if TYPE_CHECKING:
    from noxlib.config import Config
    from noxlib.plan import Plan

Result = Mapping[str, object]

# Variables that would make a rerun measure coverage into the run's data.
COVERAGE_VARIABLES = ("COVERAGE_RCFILE", "COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")


def rerun_paths(nodeids: Sequence[str], root: Path, fallback: Sequence[str]) -> list[str]:
    """What a rerun collects: only the files of ``nodeids`` (collecting a whole suite again
    can cost seconds), when each exists under ``root``, where pytest runs. Otherwise node ids
    are relative to another rootdir, and the run's own ``fallback`` paths keep them equal."""
    files = list(dict.fromkeys(file_of(nodeid) for nodeid in nodeids))
    if files and all((root / path).is_file() for path in files):
        return files
    return list(fallback)


def rerun_argv(python: str, paths: Sequence[str], args: Sequence[str]) -> tuple[str, ...]:
    """``python -m pytest PATHS ARGS --maxfail=0``: the last word wins over an ``-x`` in the
    project's addopts or the user's arguments, so every chosen test is rerun."""
    return (python, "-m", "pytest", *paths, *args, "--maxfail=0")


def rerun_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in COVERAGE_VARIABLES}


def rerun(
    nodeids: Sequence[str],
    rounds: int,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    folder: Path,
    timeout: float | None = None,
) -> Iterator[dict[str, str]]:
    """Rerun ``nodeids`` ``rounds`` times, one fresh serial process per round, yielding each
    round's {node id: outcome}. A KeyboardInterrupt stops the running rerun and is raised
    again; the rounds yielded so far stand. So does a rerun that its pytest reports
    interrupted: Ctrl-C in a terminal (or a cancelled CI job) reaches the rerun's process
    while nox holds its own signals in the post phases, and must not start the next round.
    ``timeout`` bounds each round as a batch's time limit bounds a batch: a batched run's hung
    test has no other limit."""
    folder.mkdir(parents=True, exist_ok=True)
    select = write_ids(folder / "select.jsonl", nodeids)
    for index in range(1, rounds + 1):
        name = f"rerun-{index}"
        part_env = {**rerun_env(env), SELECT_ENV: str(select), PART_NAME_ENV: name}
        part = Part(name, tuple(argv), part_env, folder / name, timeout=timeout)
        (outcome,) = run_parts([part], 1)
        if outcome.status is RunStatus.INTERRUPTED:
            raise KeyboardInterrupt(f"the serial rerun {index} was interrupted")
        results = read_results(part.files.results)
        yield {str(r["nodeid"]): str(r.get("outcome")) for r in results}


def triage_failures(
    failed: Sequence[Result],
    config: Config,
    plan: Plan,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    folder: Path,
    timeout: float | None,
    interrupted: bool,
    log: Callable[[str], object],
    reap: Callable[[], object],
) -> list[triage.Failure]:
    """Rerun the ``failed`` results' tests serially (``argv`` and ``env``: one pytest process
    per round, in ``folder``) and judge each failure. ``reap`` ends what the reruns left (they
    run after the run's reap phase); ``interrupted`` says the run was, and nothing is rerun."""
    off = triage.off_reason(config.triage, plan.options.no_triage, plan.user_args)
    if interrupted:
        off = "the run was interrupted"
    chosen, skipped = triage.choose_reruns(failed, config.triage_max, off)
    rounds: list[dict[str, str]] = []
    stopped = False
    if chosen:
        count = config.triage_reruns
        log(
            f"noxlib: triage: rerunning {len(chosen)} failed test(s) serially, {count} "
            "time(s), each time in one fresh pytest process"
        )
        try:
            # A batch's hang was stopped by its batch-timeout; a rerun needs one too.
            rounds += rerun(chosen, count, argv=argv, env=env, folder=folder, timeout=timeout)
        except KeyboardInterrupt:
            stopped = True
            log("noxlib: triage interrupted: the rest is reported not-rerun")
        finally:
            reap()
    failures = triage.judge(
        failed, rounds, skipped, parallel=plan.parallel, root=config.root, interrupted=stopped
    )
    for failure in failures:
        why = f" ({failure.reason})" if failure.reason else ""
        log(f"noxlib: triage: {failure.nodeid}: {failure.triage}{why}")
    if any(f.triage == triage.PARALLEL_ONLY for f in failures):
        log(f"noxlib: {triage.PARALLEL_ONLY_ADVICE}")
    return failures
