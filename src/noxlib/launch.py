"""What each part's pytest process is started with: its argv, its environment, its folder.

The plan says what the run does; this module turns it into `engine.Part` values: one serial
process, one xdist controller, N shards (collecting only their own files when whole files
balance), or one process per batch. Pure: the venv's paths and environment come in as values.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from noxlib.byfile import FilePlan, split_by_file
from noxlib.choice import known_durations
from noxlib.config import Config
from noxlib.groups import GROUPS_ENV, groups_for_plugin
from noxlib.idfile import write_ids
from noxlib.names import WORKER_COUNT_ENV, WORKER_ENV
from noxlib.partrun import Part
from noxlib.parts import (
    BATCH_ENV,
    CONTEXTS_ENV,
    DURATIONS_ENV,
    GC_FREEZE_ENV,
    KEEP_TOGETHER_ENV,
    SELECT_ENV,
    SHARD_FILES_ENV,
    SHARDS_ENV,
    PartFiles,
)
from noxlib.plan import (
    Batch,
    Plan,
    deselected,
    may_split_by_file,
    pytest_args,
)
from noxlib.reaping.runs import PART_NAME_ENV, Run
from noxlib.testrecords import RECORDS_FOLDER
from noxlib.words import some


@dataclass(frozen=True)
class Launch:
    """What every part of one run shares: the venv's python, the run's environment, the
    coverage rc file (None without coverage), and where the run's folder is."""

    python: str
    env: Mapping[str, str]
    run_dir: Path
    rcfile: Path | None = None

    def argv(self, args: Sequence[str]) -> list[str]:
        """``python -m pytest ARGS``, under ``coverage run`` when the run measures."""
        if self.rcfile:
            cover = ["-m", "coverage", "run", "--rcfile", str(self.rcfile)]
            return [self.python, *cover, "-m", "pytest", *args]
        return [self.python, "-m", "pytest", *args]


def run_env(
    host_env: Mapping[str, str],
    run: Run,
    plan: Plan,
    config: Config,
    *,
    rcfile: Path | None,
    order_env: Mapping[str, str],
    contexts: bool,
) -> dict[str, str]:
    """The environment of the run's pytest processes: the venv's (``host_env``), the run's
    identity, the groups, the durations snapshot and the plugin's settings."""
    env = dict(host_env)
    env.update(run.env())
    env[GROUPS_ENV] = groups_for_plugin(plan.groups, config.root)
    env["NOXLIB_SESSION"] = plan.mode.name
    env[DURATIONS_ENV] = str(run.dir / "durations.json")
    env[GC_FREEZE_ENV] = "1" if config.gc_freeze else "0"
    if plan.mode.ci:
        env["CI"] = "true"
    if rcfile:
        env["COVERAGE_RCFILE"] = str(rcfile)
    env.update(order_env)
    if contexts:
        env[CONTEXTS_ENV] = str(run.dir / RECORDS_FOLDER)
    return env


def make_parts(
    launch: Launch,
    plan: Plan,
    config: Config,
    batches: Sequence[Batch],
    file_plan: FilePlan | None,
) -> list[Part]:
    """One pytest process per part: the serial one, the xdist controller, N shards, or one per
    batch (each in a folder of its own, so two batches of one name never mix)."""
    if batches:
        alone = plan.slots == 1  # batches one after the other: their output is readable
        return [
            _part(
                launch, plan, config, batch.name, f"batch-{i:03d}", passthrough=alone, batch=batch
            )
            for i, batch in enumerate(batches, 1)
        ]
    if plan.engine.name != "shards":
        name = plan.engine.name
        return [_part(launch, plan, config, name, name, passthrough=True)]
    count = plan.workers.count
    return [
        _part(launch, plan, config, f"shard-{k}", f"shard-{k}", shard=(k, count), by_file=file_plan)
        for k in range(1, count + 1)
    ]


def _part(
    launch: Launch,
    plan: Plan,
    config: Config,
    name: str,
    folder_name: str,
    *,
    passthrough: bool = False,
    shard: tuple[int, int] | None = None,
    batch: Batch | None = None,
    by_file: FilePlan | None = None,
) -> Part:
    folder = launch.run_dir / "parts" / folder_name
    argv = launch.argv(pytest_args(plan, config, PartFiles(folder).junit, batch))
    env = {**launch.env, PART_NAME_ENV: name}
    if batch is not None:
        env[BATCH_ENV] = "1"
        if batch.select is not None:
            folder.mkdir(parents=True, exist_ok=True)
            env[SELECT_ENV] = str(write_ids(folder / "batch.jsonl", batch.select))
    levels = [str(plan.shard)] if plan.shard else []
    if shard is not None:
        index, count = shard
        levels.append(f"{index}/{count}")
        if by_file is not None:
            share_file = launch.run_dir / f"files-{index}.json"
            by_file.files[index - 1].write(share_file)
            env[SHARD_FILES_ENV] = str(share_file)
            # The CI shard's files are collected already: what is left is the local split.
            levels = levels[-1:] if by_file.local_by_test else []
        # As xdist names its workers: suites give each its own database or folder.
        env.update({WORKER_ENV: f"gw{index - 1}", WORKER_COUNT_ENV: str(count)})
    if levels:
        env[SHARDS_ENV] = " ".join(levels)
        env[KEEP_TOGETHER_ENV] = config.keep_together
    timeout = batch.timeout if batch else None
    return Part(
        name,
        tuple(argv),
        env,
        folder,
        passthrough=passthrough,
        timeout=timeout,
        relaunch_cap=config.relaunch_cap,
    )


def file_plan(
    plan: Plan,
    config: Config,
    durations: Mapping[str, float],
    skip: frozenset[str],
    log: Callable[[str], object],
) -> FilePlan | None:
    """Each shard's files, when the run may and whole files balance well enough; None when
    every shard collects everything and keeps its share of the tests."""
    if plan.engine.name != "shards" or not may_split_by_file(plan):
        return None
    scope = known_durations(durations, plan.paths(config.root), None)
    left_out = deselected(plan.user_args)
    scope = {k: v for k, v in scope.items() if k not in skip and not k.startswith(left_out)}
    levels = [plan.shard] if plan.shard else []
    split = split_by_file(scope, levels, plan.workers.count, config.keep_together)
    if split is not None:
        log(
            f"noxlib: shards collect only their own files (durations of {len(scope)} tests; "
            f"the local level {_local_split(split)})"
        )
    return split


def _local_split(split: FilePlan) -> str:
    if split.local_by_test:
        return "split by test"
    refined = sorted(split.files[0].refined)
    if not refined:
        return "split by file"
    files = [unit for unit in refined if "::" not in unit]
    by_test = len(refined) - len(files)
    named = some(files, 3)
    finer = f" ({by_test} of their functions by test)" if by_test else ""
    return f"split by file, and by function within {named}{finer}"


def host_environment(env: Mapping[str, str | None], bin_paths: Sequence[str]) -> dict[str, str]:
    """The environment a command in the venv gets, as nox's session.run builds it: this
    process's, the session's, and the venv's bin folders first on PATH."""
    merged = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    merged["PATH"] = os.pathsep.join([*bin_paths, merged.get("PATH", "")])
    return merged


def command_line(part: Part) -> str:
    """The log's line of a part's command. A shard's share is in its environment, not in its
    arguments, so the line says so: copied alone, the command would run every test."""
    line = shlex.join(part.argv[1:])  # quoted: "-m 'not slow'" pastes into a shell as it ran
    if SHARD_FILES_ENV in part.env:
        return f"{line}  [only its share of the files, from {part.env[SHARD_FILES_ENV]}]"
    if SHARDS_ENV in part.env:
        return f"{line}  [only shard {part.env[SHARDS_ENV]} of what it collects: {SHARDS_ENV}]"
    return line
