"""What one run will do: which groups, how many workers, which pytest arguments.

Pure decisions: the inputs (posargs, environment, machine facts) come in as arguments, so every
branch is unit-testable without nox, pytest or a real machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.choice import (
    SERIAL,
    Engine,
    Workers,
    choose_engine,
    known_durations,
    requested_engine,
)
from noxlib.errors import UsageError
from noxlib.groups import marker_expression
from noxlib.machine import Machine
from noxlib.options import Options, parse_options
from noxlib.parts import ShardSpec, parse_shard
from noxlib.words import plural

if TYPE_CHECKING:  # only types: the pytest plugin imports this module and skips config's cost
    from noxlib.config import Config, Group
    from noxlib.history import Flakiness

WORKERS_ENV = "PYTEST_WORKERS"
SHARD_ENV = "NOXLIB_SHARD"
# CI providers' own shard variables: index, total, the index of the first shard, provider.
CI_SHARD_VARIABLES = (
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1, "GitLab"),
    ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0, "CircleCI"),
    ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0, "Buildkite"),
)


@dataclass(frozen=True)
class Mode:
    """How a session runs by default: its worker setting and whether it is CI mode."""

    name: str
    default_workers: str
    ci: bool
    doc: str


MODES = {
    m.name: m
    for m in (
        Mode("tests", "1", ci=False, doc="Run the tests serially (PYTEST_WORKERS sets workers)."),
        Mode(
            "tests-parallel",
            "auto",
            ci=False,
            doc="Run the tests in parallel: shards or xdist (PYTEST_WORKERS=1 rolls back).",
        ),
        Mode(
            "ci",
            "auto",
            ci=True,
            doc="CI mode: parallel, CI=true, JUnit XML, per-test timeout, coverage XML/HTML.",
        ),
    )
}


@dataclass(frozen=True)
class Plan:
    """One run, decided: the session's mode, groups, workers, engine, this machine's CI shard
    (None when the run is not split across machines), noxlib's options and pytest's arguments."""

    mode: Mode
    groups: tuple[Group, ...]
    user_args: tuple[str, ...]
    explicit_paths: bool
    workers: Workers
    engine: Engine = SERIAL
    shard: ShardSpec | None = None
    options: Options = field(default_factory=Options)

    @property
    def parallel(self) -> bool:
        return self.engine.name != "serial"

    @property
    def slots(self) -> int:
        """How many pytest processes may run at once."""
        return self.workers.count if self.parallel else 1

    def paths(self, root: Path) -> list[str]:
        """The test paths this run collects from, relative to ``root``."""
        if self.explicit_paths:
            words = [w for w in self.user_args if not w.startswith("-") and _is_path(w, root)]
            return [w.split("::", 1)[0] for w in words]
        return [p for g in self.groups for p in g.paths]


def parse_worker_setting(text: str, source: str) -> str | int:
    """``"auto"`` or a whole number >= 1, from ``text`` that came from ``source``."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise UsageError(
        f"Invalid worker count {text!r} from {source}: expected 'auto' or a whole number of at "
        f"least 1. Use {WORKERS_ENV}=auto for one worker per usable CPU, or {WORKERS_ENV}=1 to "
        "run serially in one process."
    )


def resolve_workers(
    env: Mapping[str, str],
    mode: Mode,
    config: Config,
    machine: Machine,
    flakiness: Flakiness | None = None,
) -> Workers:
    """Decide the worker count for ``mode`` from ``PYTEST_WORKERS`` in ``env`` and the machine;
    ``flakiness`` is the recorded flakiness rate (for `auto-rollback`)."""
    raw = env.get(WORKERS_ENV, "").strip()
    source = f"the environment variable {WORKERS_ENV}" if raw else f"the '{mode.name}' default"
    setting = parse_worker_setting(raw or mode.default_workers, source)
    by_memory = max(1, machine.available_memory // config.memory_per_worker)
    if setting == 1:
        why = f"{WORKERS_ENV}=1" if raw else f"'{mode.name}' is serial unless {WORKERS_ENV} is set"
        return Workers(1, f"1 worker: {why}")
    if setting == "auto" and config.auto_rollback and flakiness is not None and flakiness.above:
        # Never silent: the banner carries the figure, and how to override it.
        return Workers(
            1,
            f"1 worker: auto-rollback, {flakiness.describe()}; {WORKERS_ENV}=N overrides",
        )
    if setting == "auto":
        count = min(machine.cpus, by_memory, config.max_workers)
        return Workers(
            count,
            f"{plural(count, 'worker')}: {plural(machine.cpus, 'CPU')}; "
            f"memory allows {by_memory}; cap {config.max_workers}",
        )
    assert isinstance(setting, int)
    # A number is a promise: exactly that many processes. Past the CPUs it may still pay
    # (I/O-bound suites), past memory it may not; both are said, neither is overridden.
    warnings = []
    if setting > machine.cpus:
        warnings.append(f"more than the {plural(machine.cpus, 'CPU')}")
    if setting > by_memory:
        warnings.append(
            f"more than memory allows ({by_memory} at memory-per-worker "
            f"{config.memory_per_worker / 2**30:g} GiB): the machine may run out of memory"
        )
    warned = f"; warning: {', '.join(warnings)}" if warnings else ""
    return Workers(
        setting,
        f"{plural(setting, 'worker')}: exactly {WORKERS_ENV}={setting}{warned}",
        explicit=True,
    )


def _is_path(word: str, root: Path) -> bool:
    return (root / word.split("::", 1)[0]).exists()


def _group_listing(config: Config) -> str:
    width = max(len(name) for name in config.groups)
    return "\n".join(
        f"  {g.name.ljust(width)}  {g.description}".rstrip() for g in config.groups.values()
    )


def split_posargs(
    posargs: Sequence[str], config: Config
) -> tuple[tuple[Group, ...], Options, tuple[str, ...]]:
    """Leading words that name groups select them, then come noxlib's options (options.py); the
    rest goes to pytest verbatim.

    A leading bare word that is neither a group nor an existing path is almost always a typo of a
    group name, so it stops the run with the list of groups rather than reaching pytest.
    """
    selected: list[Group] = []
    index = 0
    while index < len(posargs) and posargs[index] in config.groups:
        group = config.groups[posargs[index]]
        if group not in selected:
            selected.append(group)
        index += 1
    options, rest = parse_options(posargs[index:])
    for word in rest:
        if word.startswith("-"):
            break
        if not _is_path(word, config.root):
            raise UsageError(
                f"'{word}' (after --) is neither a test group nor an existing path.\n"
                f"Groups in {config.root / 'pyproject.toml'}:\n{_group_listing(config)}\n"
                "Name a group, a test path, or pass pytest options after it "
                "(e.g. nox -s ci -- unit -k name)."
            )
    return tuple(selected), options, rest


def resolve_shard(env: Mapping[str, str]) -> ShardSpec | None:
    """This machine's shard of a CI matrix: NOXLIB_SHARD=K/N, else a CI provider's variables;
    None when the run is not split across machines (or split in one)."""
    if env.get(SHARD_ENV, "").strip():
        spec = parse_shard(env[SHARD_ENV], f"the environment variable {SHARD_ENV}")
        return spec if spec.total > 1 else None
    for index_var, total_var, first, provider in CI_SHARD_VARIABLES:
        index, total = env.get(index_var, "").strip(), env.get(total_var, "").strip()
        if not (index and total):
            continue
        source = f"{provider}'s {index_var}={index!r} and {total_var}={total!r}"
        if not (index.isascii() and index.isdigit() and total.isascii() and total.isdigit()):
            raise UsageError(
                f"Invalid shard from {source}: both must be whole numbers. Set {SHARD_ENV}=K/N "
                "to say which shard this job runs."
            )
        spec = parse_shard(f"{int(index) - first + 1}/{total}", source)
        return spec if spec.total > 1 else None
    return None


def make_plan(
    mode: Mode,
    posargs: Sequence[str],
    env: Mapping[str, str],
    config: Config,
    machine: Machine,
    *,
    durations: Mapping[str, float] | None = None,
    flakiness: Flakiness | None = None,
) -> Plan:
    """Decide a run of session ``mode`` with ``posargs`` from the command line, knowing the
    recorded ``durations`` of the project's tests and the recorded ``flakiness`` rate."""
    workers = resolve_workers(env, mode, config, machine, flakiness)
    groups, options, rest = split_posargs(posargs, config)
    if options.affected and mode.ci:
        raise UsageError(
            f"--affected (after --) asks session {mode.name} to run only some tests, and "
            f"{mode.name} never selects: it runs every test, so that a wrong selection cannot "
            "hide a failure. Use nox -s tests -- --affected or nox -s tests-parallel -- "
            "--affected for the quick local run."
        )
    explicit_paths = any(not w.startswith("-") for w in rest[:1])
    if not groups and not explicit_paths:
        groups = tuple(config.groups[name] for name in config.default_groups)
    shard = resolve_shard(env)
    plan = Plan(mode, groups, rest, explicit_paths, workers, shard=shard, options=options)
    known = known_durations(durations or {}, plan.paths(config.root), shard)
    requested = requested_engine(options, env, config)
    return replace(plan, engine=choose_engine(requested, workers, known, rest, config.dist))


# pytest options that leave out tests the durations cannot name: a plan of whole files from
# the durations would balance tests that do not run. (--deselect names its tests: see
# deselected.)
_SELECTING_OPTIONS = ("-k", "-m", "--lf", "--last-failed", "--sw", "--stepwise")


def may_split_by_file(plan: Plan) -> bool:
    """Whether shards may collect only their own files: the run collects its groups' paths
    whole (no paths of the user's, no markers, no option that leaves tests out), so the
    durations of those paths predict what each file costs."""
    if plan.explicit_paths or marker_expression(plan.groups):
        return False
    return not any(
        arg == option or arg.startswith(option + ("=" if option.startswith("--") else ""))
        for arg in plan.user_args
        for option in _SELECTING_OPTIONS
    )


def deselected(user_args: Sequence[str]) -> tuple[str, ...]:
    """The node id prefixes of the user's ``--deselect`` options (``--deselect X`` or
    ``--deselect=X``)."""
    found = []
    for index, arg in enumerate(user_args):
        if arg == "--deselect" and index + 1 < len(user_args):
            found.append(user_args[index + 1])
        elif arg.startswith("--deselect="):
            found.append(arg.split("=", 1)[1])
    return tuple(found)


def pytest_args(
    plan: Plan, config: Config, junit: Path | None = None, batch: Batch | None = None
) -> list[str]:
    """The pytest arguments of one part of ``plan`` (of ``batch``, in a batched run); the
    user's come last so that they win. ``junit`` is where the part writes its JUnit XML."""
    args: list[str] = []
    groups = plan.groups if batch is None or batch.group is None else (batch.group,)
    if batch is not None:
        args.extend(batch.paths)
    elif not plan.explicit_paths:
        for group in groups:
            args.extend(p for p in group.paths if p not in args)
    expression = marker_expression(groups)
    if expression:
        args += ["-m", expression]
    if plan.engine.name == "xdist":
        args += ["-n", str(plan.workers.count), "--dist", config.dist]
    else:
        # One honest process, with xdist loaded all the same: its worker_id fixture keeps
        # working, and -n 0 overrides an -n in the project's addopts.
        args += ["-n", "0"]
    if plan.mode.ci:
        # --maxfail=0 undoes an -x or --maxfail in the project's addopts: CI sees every failure.
        # So does --continue-on-collection-errors: a module that does not import is an error of
        # its file, and the rest of the suite still runs.
        args += ["--maxfail=0", "--continue-on-collection-errors"]
        if junit is not None:
            args += ["--junitxml", str(junit)]
        if config.ci_timeout > 0:
            args += ["--timeout", f"{config.ci_timeout:g}"]
    args += plan.user_args if batch is None else _without_paths(plan)
    return args


def _without_paths(plan: Plan) -> list[str]:
    # A batch names its own paths: the user's paths made the batches and are not repeated.
    if not plan.explicit_paths:
        return list(plan.user_args)
    first_option = next((i for i, w in enumerate(plan.user_args) if w.startswith("-")), None)
    return [] if first_option is None else list(plan.user_args[first_option:])


@dataclass(frozen=True)
class Batch:
    """A part of a batched run: its name, the paths its pytest process runs, the group whose
    markers it keeps (None for paths given after --), its time limit in seconds, and the ids
    it runs (as pytest collected them; None: whatever its paths hold)."""

    name: str
    paths: tuple[str, ...]
    group: Group | None
    timeout: float | None
    select: tuple[str, ...] | None = None


def records_map(plan: Plan, config: Config) -> bool:
    """Whether this run records the ``--affected`` map: only ``ci`` does, with
    ``affected.record = true`` (and under coverage, in a git checkout)."""
    return plan.mode.ci and config.affected.record


def measures_coverage(plan: Plan, config: Config) -> bool:
    """Whether the run measures coverage: ``--coverage``/``--no-coverage`` for this run; else
    not when every group has ``coverage = false``; else the sessions listed in
    ``coverage.sessions`` (``ci`` by default): tracing every line costs the local loop
    1.5-2.5x, so it belongs to CI and to whoever asks for it."""
    if not config.coverage.enabled:
        return False
    if plan.options.coverage is not None:
        return plan.options.coverage
    if plan.groups and not any(group.coverage for group in plan.groups):
        return False  # every group says it measures nothing of the source
    return plan.mode.name in config.coverage.sessions
