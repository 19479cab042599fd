"""The warden: a dead man's switch for one run (``python -m noxlib.warden``).

The runner starts it with the read end of a pipe and keeps the write end. The warden blocks on
that pipe, costing nothing. A byte means the run ended normally: it exits. End of file without
a byte means the runner died (the kernel closes a dead process's descriptors, so this works
after SIGKILL and OOM, where atexit and finally never run): it ends every process of the run,
SIGTERM, the grace period, SIGKILL, then exits.

It runs under the runner's interpreter, which has psutil but not pytest, and imports neither
nox nor pytest.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from noxlib.reaping import STOP, reap_dead_run


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m noxlib.warden",
        description="End every process of a noxlib run if its runner dies.",
    )
    parser.add_argument("--run-dir", type=Path, required=True, help="the run's folder")
    parser.add_argument(
        "--grace", type=float, required=True, help="seconds from SIGTERM to SIGKILL"
    )
    parser.add_argument("--pipe-fd", type=int, required=True, help="read end of the runner's pipe")
    return parser.parse_args(argv)


def _shield() -> None:
    # Ctrl-C and a closed terminal are meant for the runner; the warden has work to do after it.
    # (It also runs in a session of its own, so these normally never reach it.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _log(message: str) -> None:
    # The runner's terminal or CI log may be gone by now; losing a line must not stop the work.
    try:
        sys.stderr.write(f"{message.replace('noxlib:', 'noxlib warden:', 1)}\n")
        sys.stderr.flush()
    except OSError:
        pass


def _runner_message(fd: int) -> bytes:
    """Block until the runner writes a byte (normal end) or dies (end of file: b"")."""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        return pipe.read(1) or b""


def main(argv: Sequence[str] | None = None) -> int:
    """Watch the runner; reap its run if it dies. Returns the exit status."""
    args = _parse(argv)
    _shield()
    if _runner_message(args.pipe_fd) == STOP:
        return 0
    _log(f"noxlib: the runner of run {args.run_dir.name} died; ending its processes")
    reap_dead_run(args.run_dir, _log, grace=args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
