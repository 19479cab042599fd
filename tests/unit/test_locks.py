"""The one flock helper: a lock belongs to an open file, and closing the file drops it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from noxlib import locks


def test_a_held_lock_refuses_a_second_taker_until_closed(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    first = locks.take(path, wait=False)
    assert first is not None
    assert locks.take(path, wait=False) is None
    first.close()
    again = locks.take(path, wait=False)
    assert again is not None
    again.close()


def test_a_missing_file_is_created_unless_create_is_false(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        locks.take(tmp_path / "missing", wait=False, create=False)
    assert not (tmp_path / "missing").exists()
    made = locks.take(tmp_path / "made")
    assert made is not None
    made.close()
    assert (tmp_path / "made").exists()


def test_held_waits_for_the_holder(tmp_path: Path) -> None:
    # flock locks belong to open files, so a thread contends for one just as a process does.
    path = tmp_path / "lock"
    order: list[str] = []
    holder = locks.take(path)
    assert holder is not None

    def wait_for_it() -> None:
        with locks.held(path):
            order.append("waiter")

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive(), "the waiter must block while the lock is held"
    order.append("holder")
    holder.close()
    waiter.join(10)
    assert order == ["holder", "waiter"]
    free = locks.take(path, wait=False)
    assert free is not None, "held() drops the lock when its block ends"
    free.close()
