"""Shared helpers: small projects in tmp dirs, run with the real nox."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

NOXFILE = "import noxlib\nnoxlib.register_sessions()\n"


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


def nox_env(**extra: str) -> dict[str, str]:
    """The environment for a nested nox: this run's noxlib variables removed, so the nested run
    is a run of its own and reaping keeps the two apart. Coverage's variables stay: the nested
    nox process (noxlib's nox side) is then measured by the outer run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("CI", None)
    env.update(extra)
    return env


def run_nox(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real nox in ``project``; stdout and stderr together in ``.stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=project,
        env=env or nox_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
