"""Holds a lock file for 3 s. Beside it, in another process, test_b_waiter fails; serially
the two never meet."""

import fcntl
import time
from pathlib import Path

LOCK = Path(__file__).parent.parent / "pair.lock"


def test_holds_the_lock():
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        time.sleep(2)
