"""A server's spec: when it needs a port."""

from __future__ import annotations

import pytest

from noxlib.servers.handle import ServerSpec


@pytest.mark.parametrize(
    ("argv", "ready", "needs"),
    [
        (("srv", "--port", "{port}"), "log:up", True),
        (("srv",), "tcp", True),
        (("srv",), "http:/health", True),
        (("srv",), "log:up", False),
    ],
)
def test_a_port_is_picked_when_argv_or_readiness_needs_one(
    argv: tuple[str, ...], ready: str, needs: bool
) -> None:
    assert ServerSpec("s", argv, ready).needs_port() is needs
