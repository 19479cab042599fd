"""Which engine a run uses, serial, shards or xdist, and the sentence that says why.

``--engine`` first, then ``NOXLIB_ENGINE``, then ``tool.noxlib.engine``; ``auto`` runs shards
unless the recorded durations predict that they cannot beat one process. Pure decisions: the
durations and the worker count come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from noxlib.errors import UsageError
from noxlib.options import ENGINES, Options
from noxlib.parts import ShardSpec, plan_shards

if TYPE_CHECKING:
    from noxlib.config import Config

ENGINE_ENV = "NOXLIB_ENGINE"
# What one more pytest process costs in wall time beyond its share of the tests (interpreter,
# plugins, collection on a busy machine), for the auto engine's prediction.
PROCESS_START_SECONDS = 0.5
# auto runs shards only when they are predicted to take less than this share of serial time.
AUTO_MARGIN = 0.9


@dataclass(frozen=True)
class Workers:
    """How many pytest processes run the tests, and the sentence that says why."""

    count: int
    reason: str
    # Set by the user as a number (PYTEST_WORKERS=N): exactly that many processes, never
    # fewer; only `auto` may fall back to one.
    explicit: bool = False


@dataclass(frozen=True)
class Engine:
    """How the run's tests run: ``serial``, ``shards`` or ``xdist``, and the sentence why."""

    name: str
    reason: str


def _under(nodeid: str, roots: Sequence[str]) -> bool:
    return any(nodeid == r or nodeid.startswith((r + "/", r + "::")) for r in roots)


def known_durations(
    durations: Mapping[str, float], paths: Sequence[str], shard: ShardSpec | None
) -> dict[str, float]:
    """The recorded durations of the tests under ``paths`` (no paths: pytest's own choice,
    every test), of this machine's CI shard."""
    roots = [p.rstrip("/") for p in paths]
    known = {nodeid: s for nodeid, s in durations.items() if not roots or _under(nodeid, roots)}
    if shard is not None and known:
        share = plan_shards(known, durations, shard.total)[shard.index - 1].tests
        known = {nodeid: known[nodeid] for nodeid in share}
    return known


def choose_engine(
    requested: tuple[str, str],
    workers: Workers,
    known: Mapping[str, float],
    user_args: Sequence[str],
    dist: str,
) -> Engine:
    """The engine of a run with ``workers``; ``requested`` is (engine setting, where it came
    from), ``known`` the recorded durations of the tests the run will collect."""
    setting, source = requested
    if workers.count == 1:
        return Engine("serial", "")
    if any(arg in ("--pdb", "--trace") for arg in user_args):
        return Engine("serial", "--pdb and --trace need the one process you type into")
    if setting == "xdist":
        return Engine("xdist", f"engine xdist (--dist {dist}) from {source}")
    if setting == "shards":
        return Engine("shards", f"engine shards from {source}")
    if workers.explicit:
        return Engine("shards", f"engine shards (auto): {workers.count} processes were asked for")
    return _auto_engine(workers, known)


def _auto_engine(workers: Workers, known: Mapping[str, float]) -> Engine:
    """Shards, unless the recorded durations predict that they cannot beat one process."""
    if not known:
        return Engine("shards", "engine shards (auto): no recorded durations yet")
    serial = sum(known.values())
    parallel = max(s.predicted for s in plan_shards(known, known, workers.count))
    parallel += PROCESS_START_SECONDS
    figures = f"{workers.count} shards {_seconds(parallel)} against {_seconds(serial)} serially"
    if parallel >= serial * AUTO_MARGIN:
        return Engine(
            "serial",
            f"engine serial (auto): recorded durations predict {figures}; parallel cannot win",
        )
    return Engine("shards", f"engine shards (auto): recorded durations predict {figures}")


def _seconds(value: float) -> str:
    # "0.0 s serially" for seven fast tests reads as "no time": milliseconds say how little.
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def requested_engine(options: Options, env: Mapping[str, str], config: Config) -> tuple[str, str]:
    """The engine asked for, and where: --engine, then NOXLIB_ENGINE, then the setting."""
    if options.engine:
        return options.engine, "--engine"
    raw = env.get(ENGINE_ENV, "").strip()
    if raw:
        if raw not in ENGINES:
            raise UsageError(
                f"Invalid engine {raw!r} from the environment variable {ENGINE_ENV}: expected "
                f"one of {', '.join(ENGINES)}."
            )
        return raw, f"the environment variable {ENGINE_ENV}"
    return config.engine, "tool.noxlib.engine" if config.engine != "auto" else "the default"


# The engine of a plan made before any engine is chosen.
SERIAL = Engine("serial", "")
