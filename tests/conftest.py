"""Shared helpers: small projects in tmp dirs, run with the real nox."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import psutil
import pytest

NOXFILE = "import noxlib\nnoxlib.register_sessions()\n"
# The smallest project: one group over tests/, nothing installed, no triage reruns.
PLAIN_PYPROJECT = """
[tool.noxlib]
install = []
triage = false

[tool.noxlib.groups.unit]
paths = ["tests"]
"""
CHECKOUT = Path(__file__).resolve().parents[1]


def write_project(root: Path, pyproject: str, files: dict[str, str] | None = None) -> Path:
    """Create a project at ``root``: the one-line noxfile, ``pyproject`` and ``files``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "noxfile.py").write_text(NOXFILE)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    def make(pyproject: str, files: dict[str, str] | None = None, name: str = "proj") -> Path:
        return write_project(tmp_path / name, pyproject, files)

    return make


def git(root: Path, *args: str) -> str:
    """git in ``root``, with an identity for commits; its stdout. Fails the test on an error."""
    done = subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def nox_env(**extra: str) -> dict[str, str]:
    """The environment for a nested nox: this run's noxlib variables removed, so the nested run
    is a run of its own and reaping keeps the two apart. Coverage's variables stay: the nested
    nox process (noxlib's nox side) is then measured by the outer run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("CI", None)
    # nox's own session selectors (.ci/run sets NOXPYTHON for noxlib's matrix) would pick
    # among the nested project's sessions too.
    for name in ("NOXPYTHON", "NOXEXTRAPYTHON", "NOXFORCEPYTHON", "NOXSESSION"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_nox(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    umask: int = -1,
) -> subprocess.CompletedProcess[str]:
    """Run the real nox in ``project``; stdout and stderr together in ``.stdout``. ``umask``
    sets nox's umask (-1: this process's)."""
    _nox_imports_this_checkout(project)
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=project,
        env=env or nox_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
        umask=umask,
    )


@cache
def _nox_imports_this_checkout(project: Path) -> None:
    """Stop when a nested nox would import another copy of noxlib than the one under test.

    The nested nox runs in the project's folder, where this checkout is not on sys.path: it
    imports whatever noxlib the Python has installed. An editable install of another clone would
    silently test that clone's code."""
    found = subprocess.run(
        [sys.executable, "-c", "import noxlib; print(noxlib.__file__)"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if Path(found or "?").resolve().parent != CHECKOUT / "src" / "noxlib":
        pytest.exit(
            f"{sys.executable} imports noxlib from {found or 'nowhere'}, not from the checkout "
            f"under test ({CHECKOUT}). Install this checkout: "
            f"{sys.executable} -m pip install -e '{CHECKOUT}[uv]'",
            returncode=4,
        )


def alive(proc: psutil.Process) -> bool:
    """True while ``proc`` (the very process, psutil checks its start time) has not ended.

    Tests keep their own check rather than noxlib's, so a bug there cannot hide itself."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: list[psutil.Process], timeout: float = 30.0) -> list[psutil.Process]:
    """Wait until every process in ``procs`` has ended; return those still alive at ``timeout``."""
    deadline = time.monotonic() + timeout
    left = [p for p in procs if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left
