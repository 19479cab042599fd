"""Two tests that fail only when they run at the same time: one holds a lock for 3 s, the
other fails if it finds the lock held. Serially they never meet. Both outlast the project's
2 s timeout on purpose: their marker gives them 10 s."""

import fcntl
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(10)

LOCK = Path(__file__).parent.parent / "pair.lock"


def test_holds_the_lock():
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        time.sleep(3)


def test_fails_while_the_lock_is_held():
    deadline = time.monotonic() + 2.5
    with LOCK.open("a") as handle:
        while time.monotonic() < deadline:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AssertionError("pair.lock is held by a test running beside this one")
            fcntl.flock(handle, fcntl.LOCK_UN)
            time.sleep(0.05)
