"""Peak memory of a run: its whole process tree sampled with psutil while its tests run.

Nobody measures the peak until the machine runs out of memory; this does, for every run. The
sample is the resident memory (RSS) of every process below the runner, once per INTERVAL:
each part's own tree (its pytest process, the servers and subprocesses it started), and the
run's total. A daemon that left the tree (setsid and reparented) is not counted.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

INTERVAL = 1.0


@dataclass
class Sampler:
    """Peak RSS in bytes per part and for the whole run; ``spent`` is the seconds sampling
    took, so its cost can be reported against the run's wall time."""

    interval: float = INTERVAL
    peaks: dict[str, int] = field(default_factory=dict)
    run_peak: int = 0
    spent: float = 0.0
    samples: int = 0
    _next: float = 0.0

    def maybe_sample(self, parts: Mapping[str, int]) -> None:
        """Sample if INTERVAL has passed; ``parts`` maps each running part to its pid."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        started = time.perf_counter()
        self.sample(parts)
        self.spent += time.perf_counter() - started

    def sample(self, parts: Mapping[str, int]) -> None:
        rss, parent = _tree(os.getpid())
        self.samples += 1
        self.run_peak = max(self.run_peak, sum(rss.values()))
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        for name, root in parts.items():
            total, stack = 0, [root]
            while stack:
                pid = stack.pop()
                total += rss.get(pid, 0)
                stack.extend(children.get(pid, ()))
            self.peaks[name] = max(self.peaks.get(name, 0), total)


def _tree(root: int) -> tuple[dict[int, int], dict[int, int]]:
    """RSS and parent of every process below ``root`` (itself excluded)."""
    rss: dict[int, int] = {}
    parent: dict[int, int] = {}
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process(root).children(recursive=True):
            with contextlib.suppress(psutil.Error), proc.oneshot():
                rss[proc.pid] = proc.memory_info().rss
                parent[proc.pid] = proc.ppid()
    return rss, parent


def own_peak_rss() -> int:
    """The most resident memory this process has held, in bytes (the kernel's high-water mark:
    nothing is sampled)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux counts in KiB


def human(size: int) -> str:
    """``1288490188`` -> ``1.2 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
