"""What a run needs of the world around it: the tools its venv gets, its host (nox's session,
or a fake one in tests) and the engine that runs its parts, as protocols; and how it says it
did not pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from noxlib.errors import NoxlibError
from noxlib.memory import Sampler
from noxlib.partrun import Part, PartOutcome

# What every session venv gets besides the project: the runner, its plugins, and psutil for
# noxlib's own plugin. patch = subprocess came in coverage 7.10 and measured subprocesses
# started in other folders only from 7.10.3/7.10.6; the [run] core setting came in 7.9;
# sysmon's branch measurement on Python 3.14 claimed missing branches wrongly before 7.11.1.
COVERAGE_REQUIREMENT = "coverage>=7.11.1"
TEST_TOOLS: tuple[str, ...] = (
    "pytest",
    "pytest-xdist",
    COVERAGE_REQUIREMENT,
    "pytest-timeout",
    "psutil",
    "tomli; python_version < '3.11'",
)


class Engine(Protocol):
    """What runs a run's parts (engine.run_parts): each part's pytest process, at most
    ``slots`` at a time; how each ended, in order."""

    def __call__(
        self,
        parts: Sequence[Part],
        slots: int,
        *,
        tick: Callable[[float], object] = ...,
        on_end: Callable[[PartOutcome], object] = ...,
        sampler: Sampler | None = None,
    ) -> list[PartOutcome]: ...


class RunFailed(NoxlibError):
    """The run ended with a status other than passed; the message says which and why."""


class Host(Protocol):
    """What a run needs of its host (nox's session): the session's name, a log, a venv."""

    name: str  # nox's session name (tests-3.12): each keeps its own history

    def log(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def install(self, *args: str) -> None: ...
    def bin(self) -> Path: ...
    def env(self) -> dict[str, str]: ...
