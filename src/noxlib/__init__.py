"""noxlib: one canonical, reaped, timed way to run a project's tests, from nox.

A whole noxfile can be::

    import noxlib
    noxlib.register_sessions()

The building blocks are public so a noxfile can compose its own sessions from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noxlib._version import __version__ as __version__

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

from noxlib.errors import ConfigError, NoxlibError, UsageError

if TYPE_CHECKING:
    from noxlib.config import Config, load_config
    from noxlib.selfinstall import self_install_args
    from noxlib.sessions import register_sessions, run_tests

_LAZY = {
    "Config": "noxlib.config",
    "load_config": "noxlib.config",
    "register_sessions": "noxlib.sessions",
    "run_tests": "noxlib.sessions",
    "self_install_args": "noxlib.selfinstall",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use: the sessions import nox, and every pytest process of every run
    # imports this package for the plugin; neither should pay for what it does not use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'noxlib' has no attribute {name!r}")
