"""The warden: a dead man's switch for one run (``python -m noxlib.reaping.warden``).

The runner starts it with the read end of a pipe and keeps the write end. The warden blocks on
that pipe, costing nothing. A byte means the run ended normally: it exits. End of file without
a byte means the runner died (the kernel closes a dead process's descriptors, so this works
after SIGKILL and OOM, where atexit and finally never run): it ends every process of the run,
SIGTERM, the grace period, SIGKILL, then exits.

It runs under the runner's interpreter, which has psutil but not pytest, and imports neither
nox nor pytest. Both sides of the pipe live here: `Warden` is the runner's handle, `main` the
warden process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from noxlib.reaping.runs import Run

# The warden process imports only the standard library until its runner dies: every normal run
# starts one, and what it does not import cannot slow the run's own start. The runner's side
# (``Warden``) imports psutil and the ledger inside its methods; the runner has them loaded.

STOP = b"s"
# How long stop() waits for the warden to exit before ending it (it is our child).
STOP_WAIT = 5.0


class Warden:
    """The runner's side of the dead man's switch: a warden process and the pipe it watches.

    The warden reads the pipe; a byte means "the run ended normally, go away", end of file
    without one means the runner died (SIGKILL, OOM, a crash) and it must reap the run.
    """

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self._pipe: int | None = pipe

    @classmethod
    def start(cls, run: Run, *, grace: float) -> Warden:
        """Write ``run``'s ledger header and start its warden, which will give each process of
        the run ``grace`` seconds between SIGTERM and SIGKILL should the runner die."""
        import psutil

        from noxlib.reaping.ledger import open_ledger, record_process

        open_ledger(run)
        read_end, write_end = os.pipe()  # both close-on-exec: pytest must not hold the pipe
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "noxlib.reaping.warden",
                    "--run-dir",
                    str(run.dir),
                    "--grace",
                    f"{grace:g}",
                    "--pipe-fd",
                    str(read_end),
                ],
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                env=_warden_env(),
                # Its own session: Ctrl-C and a hangup of the terminal reach the runner, not
                # the process that must clean up after it.
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        with contextlib.suppress(psutil.Error, OSError):
            record_process(run.dir, process.pid, name="noxlib-warden")
        return cls(process, write_end)

    def stop(self) -> None:
        """Tell the warden the run ended normally and wait for it to exit."""
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):  # a warden already gone cannot be told
            os.write(self._pipe, STOP)
        os.close(self._pipe)
        self._pipe = None
        try:
            self.process.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _warden_env() -> dict[str, str]:
    # The warden imports the very noxlib this process did, wherever that came from.
    package_parent = str(Path(__file__).resolve().parents[2])
    path = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


# --- the warden process -------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m noxlib.reaping.warden",
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
    # Only now: psutil and the sweeps cost the run nothing while its runner lives.
    from noxlib.reaping.sweep import reap_dead_run

    _log(f"noxlib: the runner of run {args.run_dir.name} died; ending its processes")
    reap_dead_run(args.run_dir, _log, grace=args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
