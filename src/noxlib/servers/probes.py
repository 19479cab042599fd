"""Readiness probes of managed servers: tcp, http, a log line, or a callable.

Each probe answers (ready?, what was seen); the last answer goes into the error message of a
server that never became ready. A probe reads only what `ProbeTarget` names of its server, so
this module does not know the server handle that uses it.
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from noxlib.errors import ServerError
from noxlib.servers.folders import read_tail
from noxlib.servers.ports import HOST

PROBE_TIMEOUT = 2.0

Probe = Callable[[], tuple[bool, str]]


class ProbeTarget(Protocol):
    """What a probe reads of the server it checks (a `noxlib.servers.Server`)."""

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def log_offset(self) -> int: ...

    def port_or_fail(self) -> int: ...


Target = TypeVar("Target", bound=ProbeTarget)


def asks_port(ready: object) -> bool:
    """Whether readiness ``ready`` is judged by what answers on the server's port."""
    return isinstance(ready, str) and (ready == "tcp" or ready.startswith("http:"))


def make_probe(ready: str | Callable[[Target], bool], server: Target) -> Probe:
    """The readiness check named by ``ready`` for ``server``: (ready?, what was seen)."""
    if callable(ready):
        return lambda: _call_probe(ready, server)
    if ready == "tcp":
        return lambda: _tcp_probe(server.port_or_fail())
    if ready.startswith("http:"):
        path = "/" + ready[len("http:") :].lstrip("/")
        return lambda: _http_probe(f"http://{HOST}:{server.port_or_fail()}{path}")
    if ready.startswith("log:"):
        pattern = re.compile(ready[len("log:") :], re.MULTILINE)
        return lambda: _log_probe(pattern, server)
    raise ServerError(
        f"Unknown ready={ready!r} for server '{server.name}': use 'tcp', 'http:/path', "
        "'log:<regex>' or a callable taking the server and returning a bool."
    )


def _call_probe(ready: Callable[[Target], bool], server: Target) -> tuple[bool, str]:
    try:
        return bool(ready(server)), f"{getattr(ready, '__name__', 'callable')}() was false"
    except Exception as exc:
        return False, f"{getattr(ready, '__name__', 'callable')}() raised {exc!r}"


def _tcp_probe(port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT):
            return True, f"port {port} accepted a connection"
    except OSError as exc:
        return False, f"connecting to port {port}: {exc.strerror or exc}"


# No proxies: a CI runner's HTTP_PROXY must not swallow probes of 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_probe(url: str) -> tuple[bool, str]:
    try:
        with _DIRECT.open(url, timeout=PROBE_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()  # an unclosed error response warns when collected
        return False, f"GET {url} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"GET {url} failed: {getattr(reason, 'strerror', None) or reason}"
    return 200 <= status < 400, f"GET {url} answered HTTP {status}"


def _log_probe(pattern: re.Pattern[str], server: ProbeTarget) -> tuple[bool, str]:
    text = read_tail(server.log_path, start=server.log_offset, lines=1_000_000)
    if pattern.search(text):
        return True, f"the log matched {pattern.pattern!r}"
    return False, f"no line of the log matched {pattern.pattern!r} yet"
