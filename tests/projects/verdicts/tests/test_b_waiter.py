"""Fails when it finds the lock of test_a_lock held: only by a test running at the same time."""

import fcntl
import time
from pathlib import Path

LOCK = Path(__file__).parent.parent / "pair.lock"


def test_fails_while_the_lock_is_held():
    deadline = time.monotonic() + 1.5
    with LOCK.open("a") as handle:
        while time.monotonic() < deadline:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AssertionError("pair.lock is held by a test running beside this one")
            fcntl.flock(handle, fcntl.LOCK_UN)
            time.sleep(0.05)
