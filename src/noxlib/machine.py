"""The facts about this machine that bound a run's worker count: usable CPUs (affinity, a
cgroup's CPU quota) and available memory (a cgroup's limit too), read with psutil."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """The facts about this machine that bound the worker count."""

    cpus: int
    available_memory: int


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
