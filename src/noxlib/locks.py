"""Exclusive file locks: the one kind of lock noxlib takes.

``flock``, never a lock file's existence: the kernel drops the lock when its holder dies however
it dies (SIGKILL and OOM included), so a killed process never leaves anything locked. The lock
belongs to the open file, which is opened close-on-exec (Python's default): children do not
inherit it. Used for a run's liveness (`noxlib.reaping.runs`), for a server shared by xdist
workers (`noxlib.servers.sharing`) and for caches that many processes fill once.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def take(path: Path, *, wait: bool = True, create: bool = True) -> IO[bytes] | None:
    """Open ``path`` and take its exclusive lock; the returned file holds it until closed.

    With ``wait`` false, returns None at once when another open file holds the lock. With
    ``create`` false a missing file raises FileNotFoundError instead of being made.
    """
    handle = path.open("a+b" if create else "rb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except BaseException:
        handle.close()
        raise
    return handle


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (created if missing) for the ``with`` block, waiting
    for it as long as another process holds it."""
    handle = take(path)
    assert handle is not None, "a waiting lock is always taken"
    with handle:
        yield
