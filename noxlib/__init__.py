"""noxlib: one canonical, reaped, timed way to run a project's tests, from nox.

A whole noxfile can be::

    import noxlib
    noxlib.register_sessions()

The building blocks are public so a noxfile can compose its own sessions from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Config",
    "ConfigError",
    "NoxlibError",
    "UsageError",
    "load_config",
    "register_sessions",
    "run_tests",
    "self_install_args",
]

from noxlib.config import Config, load_config
from noxlib.errors import ConfigError, NoxlibError, UsageError

if TYPE_CHECKING:
    from noxlib.sessions import register_sessions, run_tests, self_install_args


def __getattr__(name: str) -> Any:
    # The nox-facing names import nox; load them on first use so that the pytest plugin and the
    # warden, which import noxlib inside a session venv without nox, never pay for it.
    if name in ("register_sessions", "run_tests", "self_install_args"):
        from noxlib import sessions

        return getattr(sessions, name)
    raise AttributeError(f"module 'noxlib' has no attribute {name!r}")
