"""One small exception hierarchy.

Every message names the bad value, where it came from and how to fix it, so a user can act on
it without reading noxlib's source.
"""

from __future__ import annotations


class NoxlibError(Exception):
    """Base of every error noxlib raises on purpose."""


class ConfigError(NoxlibError):
    """``[tool.noxlib]`` in pyproject.toml is missing, malformed or inconsistent."""


class UsageError(NoxlibError):
    """A command-line argument or environment variable is not valid."""


class ServerError(NoxlibError):
    """A managed server could not start, died, or was used wrongly."""


class ServerStartError(ServerError):
    """A server exited before it was ready, or was not ready in time."""


class ServerDiedError(ServerError):
    """A server died and ``respawn=False`` forbids starting it again."""
