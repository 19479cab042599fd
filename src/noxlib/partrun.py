"""A part of a run, its running process and how it ended, as values the engine (engine.py)
and the reading of a process's end (endings.py) share."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from noxlib.jsonlines import Tail
from noxlib.outcomes import RunStatus
from noxlib.parts import PartFiles

# Processes a part may start in all when its tests keep killing them (the relaunch-cap setting).
RELAUNCH_CAP = 50


@dataclass(frozen=True)
class Part:
    """One pytest process's worth of the run: its name, command, environment and folder.

    ``passthrough`` sends its output to the terminal (a part that runs alone); otherwise it goes
    to the part's log file. ``timeout`` is the seconds the part may take before its whole
    process tree is ended; ``test_timeout`` the seconds one test may run, from its start (a
    rerun's: a hung test ends at its own limit, not at the part's, which also allows for
    starting and collecting); ``relaunch_cap`` how many processes it may start in all when
    tests kill them.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    dir: Path
    passthrough: bool = False
    timeout: float | None = None
    test_timeout: float | None = None
    relaunch_cap: int = RELAUNCH_CAP

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
class Running:
    """A part's pytest process while it runs: the offset of its meta file at its start tells
    its own events from those of the processes before it."""

    part: Part
    popen: subprocess.Popen[bytes]
    started: float
    meta_offset: int
    starts: Tail  # the tests this process starts, read as it runs (``test_timeout``)
    timed_out: bool = False
    # The test this process runs (the last one it started) and since when.
    current: str | None = None
    current_since: float = 0.0
    # The test that ran past the part's test_timeout, which ended the process.
    past_its_limit: str | None = None
