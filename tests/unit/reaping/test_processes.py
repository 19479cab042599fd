"""How an ended process is described: exit codes, and signals by name."""

from __future__ import annotations

import pytest

from noxlib.reaping.processes import describe_exit


@pytest.mark.parametrize(
    ("returncode", "said"),
    [
        (-6, "died with SIGABRT (exit code -6)"),
        (-9, "died with SIGKILL (exit code -9)"),
        (134, "exited with code 134 (a shell's way of saying SIGABRT)"),
        (3, "exited with code 3"),
        (0, "exited with code 0"),
    ],
)
def test_exits_are_described_with_signal_names(returncode: int, said: str) -> None:
    assert describe_exit(returncode) == said
