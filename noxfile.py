"""noxlib's own test entrypoint: it dogfoods register_sessions() for its own groups."""

import sys
from pathlib import Path

# Run from a fresh clone, before noxlib is installed anywhere: import it from this checkout.
sys.path.insert(0, str(Path(__file__).parent / "src"))

import nox

import noxlib

noxlib.register_sessions()


@nox.session(venv_backend="uv|virtualenv", default=False)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict on the package."""
    # nox, pytest and coverage are here for their types: noxlib imports each of them.
    session.install("ruff", "mypy", "types-psutil", "nox", "pytest", "coverage", "psutil")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
