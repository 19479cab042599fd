"""Reaping: end every process of a run, and nothing else.

The rooms, in the order a run meets them:

* `runs` - the run's id, its folder under ``.noxlib/runs/`` and its liveness lock (stdlib only);
* `ledger` - one JSON line per process the run started, proving it is the run's later;
* `sweep` - finding a run's processes with proof of identity, and the three hooks that end
  them: `reap_run` (post phase), `reap_stale_runs` (pre phase, ``nox -s reap``) and
  `reap_dead_run` (the warden); `finish_run`, which forgets a run only once nothing of it runs;
* `processes` - ending processes: SIGTERM, grace, SIGKILL, bounded waits (servers use it too);
* `warden` - the dead man's switch process (``python -m noxlib.reaping.warden``) and the
  runner's handle on it.

The names callers use are here, loaded on first use: the pytest plugin reads `RUN_DIR_ENV` in
every pytest process, and the warden process imports this package while it waits; neither may
pay for psutil or the sweeps until it needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "RUN_DIR_ENV",
    "RUN_ID_ENV",
    "Reaped",
    "Run",
    "Warden",
    "finish_run",
    "reap_dead_run",
    "reap_part",
    "reap_run",
    "reap_stale_runs",
    "record_process",
    "start_run",
]

if TYPE_CHECKING:
    from noxlib.reaping.ledger import record_process
    from noxlib.reaping.runs import RUN_DIR_ENV, RUN_ID_ENV, Run, start_run
    from noxlib.reaping.sweep import (
        Reaped,
        finish_run,
        reap_dead_run,
        reap_part,
        reap_run,
        reap_stale_runs,
    )
    from noxlib.reaping.warden import Warden

_LAZY = {
    "RUN_DIR_ENV": "noxlib.reaping.runs",
    "RUN_ID_ENV": "noxlib.reaping.runs",
    "Run": "noxlib.reaping.runs",
    "start_run": "noxlib.reaping.runs",
    "record_process": "noxlib.reaping.ledger",
    "Reaped": "noxlib.reaping.sweep",
    "finish_run": "noxlib.reaping.sweep",
    "reap_dead_run": "noxlib.reaping.sweep",
    "reap_part": "noxlib.reaping.sweep",
    "reap_run": "noxlib.reaping.sweep",
    "reap_stale_runs": "noxlib.reaping.sweep",
    "Warden": "noxlib.reaping.warden",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'noxlib.reaping' has no attribute {name!r}")
