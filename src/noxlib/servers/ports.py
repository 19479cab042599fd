"""TCP ports of managed servers: picking a free one, and who listens on one."""

from __future__ import annotations

import re
import socket

import psutil

HOST = "127.0.0.1"
# How servers of the main languages say "someone else has this port" before exiting.
ADDRESS_IN_USE = re.compile(
    r"address already in use|EADDRINUSE|errno 98\b|errno 48\b|port .* (?:is )?(?:already )?in use",
    re.IGNORECASE,
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def listeners(port: int) -> set[int]:
    """Pids of the processes listening on TCP ``port`` that we may see."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {
        conn.pid
        for conn in connections
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid
    }
