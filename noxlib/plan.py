"""What one run will do: which groups, how many workers, which pytest arguments.

Pure decisions: the inputs (posargs, environment, machine facts) come in as arguments, so every
branch is unit-testable without nox, pytest or a real machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib.errors import UsageError

if TYPE_CHECKING:  # only types: the pytest plugin imports this module and skips config's cost
    from noxlib.config import Config, Group

WORKERS_ENV = "PYTEST_WORKERS"
# The selected groups, for the plugin to mark items with: {name: [absolute paths]} as JSON.
GROUPS_ENV = "NOXLIB_GROUPS"


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
            doc="Run the tests in parallel with pytest-xdist (PYTEST_WORKERS=1 rolls back).",
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
class Machine:
    """The facts about this machine that bound the worker count."""

    cpus: int
    available_memory: int


@dataclass(frozen=True)
class Workers:
    """How many pytest processes run the tests, and the sentence that says why."""

    count: int
    reason: str


@dataclass(frozen=True)
class Plan:
    """One run, decided: the session's mode, groups, workers and user's pytest arguments."""

    mode: Mode
    groups: tuple[Group, ...]
    user_args: tuple[str, ...]
    explicit_paths: bool
    workers: Workers

    @property
    def parallel(self) -> bool:
        return self.workers.count > 1


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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def resolve_workers(
    env: Mapping[str, str], mode: Mode, config: Config, machine: Machine
) -> Workers:
    """Decide the worker count for ``mode`` from ``PYTEST_WORKERS`` in ``env`` and the machine."""
    raw = env.get(WORKERS_ENV, "").strip()
    source = f"the environment variable {WORKERS_ENV}" if raw else f"the '{mode.name}' default"
    setting = parse_worker_setting(raw or mode.default_workers, source)
    by_memory = max(1, machine.available_memory // config.memory_per_worker)
    if setting == 1:
        why = f"{WORKERS_ENV}=1" if raw else f"'{mode.name}' is serial unless {WORKERS_ENV} is set"
        return Workers(1, f"1 worker: {why}")
    if setting == "auto":
        count = min(machine.cpus, by_memory, config.max_workers)
        return Workers(
            count,
            f"{_plural(count, 'worker')}: {_plural(machine.cpus, 'CPU')}; "
            f"memory allows {by_memory}; cap {config.max_workers}",
        )
    assert isinstance(setting, int)
    # An explicit count is honoured past the CPU count (I/O-bound suites gain from it) but never
    # past what memory allows: running the machine out of memory kills the whole run.
    count = min(setting, by_memory)
    capped = f"; memory allows only {by_memory}" if count < setting else ""
    return Workers(count, f"{_plural(count, 'worker')}: {WORKERS_ENV}={setting}{capped}")


def _is_path(word: str, root: Path) -> bool:
    return (root / word.split("::", 1)[0]).exists()


def _group_listing(config: Config) -> str:
    width = max(len(name) for name in config.groups)
    return "\n".join(
        f"  {g.name.ljust(width)}  {g.description}".rstrip() for g in config.groups.values()
    )


def split_posargs(
    posargs: Sequence[str], config: Config
) -> tuple[tuple[Group, ...], tuple[str, ...]]:
    """Leading words that name groups select them; the rest goes to pytest verbatim.

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
    rest = tuple(posargs[index:])
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
    return tuple(selected), rest


def make_plan(
    mode: Mode, posargs: Sequence[str], env: Mapping[str, str], config: Config, machine: Machine
) -> Plan:
    """Decide a run of session ``mode`` with ``posargs`` from the command line."""
    workers = resolve_workers(env, mode, config, machine)
    groups, rest = split_posargs(posargs, config)
    explicit_paths = any(not w.startswith("-") for w in rest[:1])
    if not groups and not explicit_paths:
        groups = tuple(config.groups[name] for name in config.default_groups)
    return Plan(mode, groups, rest, explicit_paths, workers)


def group_marker(name: str) -> str:
    """The marker the plugin puts on items under a group's paths (markers are identifiers)."""
    return "noxlib_group_" + name.replace("-", "_")


def marker_expression(groups: Sequence[Group]) -> str | None:
    """The ``-m`` expression that applies each group's own markers to its own tests."""
    if not any(g.markers for g in groups):
        return None
    if len(groups) == 1:
        return groups[0].markers
    parts = [
        f"({group_marker(g.name)} and ({g.markers}))" if g.markers else group_marker(g.name)
        for g in groups
    ]
    return " or ".join(parts)


def groups_for_plugin(groups: Sequence[Group], root: Path) -> str:
    """JSON the plugin reads to mark items by group: ``{name: [absolute paths]}``."""
    return json.dumps({g.name: [str((root / p).resolve()) for p in g.paths] for g in groups})


def pytest_args(plan: Plan, config: Config) -> list[str]:
    """The full pytest argument list for ``plan``; the user's arguments come last so they win."""
    args: list[str] = []
    if not plan.explicit_paths:
        for group in plan.groups:
            args.extend(p for p in group.paths if p not in args)
    expression = marker_expression(plan.groups)
    if expression:
        args += ["-m", expression]
    if plan.parallel:
        args += ["-n", str(plan.workers.count), "--dist", config.dist]
    else:
        # Honestly serial: no xdist controller and no worker process at all.
        args += ["-p", "no:xdist"]
    if plan.mode.ci:
        junit = config.reports_path / "junit.xml"
        # --maxfail=0 undoes an -x or --maxfail in the project's addopts: CI sees every failure.
        args += ["--junitxml", str(junit), "--maxfail=0"]
        if config.ci_timeout > 0:
            args += ["--timeout", f"{config.ci_timeout:g}"]
    args += plan.user_args
    return args


def banner(plan: Plan, config: Config) -> str:
    """One line saying what this run does and why, printed before anything runs."""
    names = ", ".join(g.name for g in plan.groups) or "paths given after --"
    how = f"parallel (--dist {config.dist})" if plan.parallel else "serial"
    return f"noxlib: session {plan.mode.name}, groups: {names}; {how}, {plan.workers.reason}"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, further bounded by a cgroup CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(count, quota) if quota else count)


def _cgroup_cpu_quota() -> int | None:
    # A CI container often has all host CPUs in its affinity but a quota of two of them.
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(quota) // int(period))


def _cgroup_memory_room() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if limit == "max":
        return None
    return max(0, int(limit) - int(used))


def current_machine() -> Machine:
    """Read the CPU and memory facts with psutil, honouring cgroup limits of containers."""
    import psutil

    available = psutil.virtual_memory().available
    room = _cgroup_memory_room()
    if room is not None:
        available = min(available, room)
    return Machine(cpus=usable_cpus(), available_memory=available)
