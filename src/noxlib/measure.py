"""How a run measures coverage: its rc file and the coverage core that measures it.

Each run keeps its data files in its own run folder, so two runs in one checkout never erase or
combine each other's data. Plain Python on the nox side: nox's own environment need not have
coverage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noxlib.config import CoverageSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_FILE = ".coverage"
NOXLIB_PACKAGE = Path(__file__).resolve().parent
# sys.monitoring (PEP 669) exists from Python 3.12; coverage's sysmon core measures branches
# only from 3.14 (coverage 7.7). Below those, coverage's C tracer (ctrace) is its fastest core.
SYSMON_PYTHON = (3, 12)
SYSMON_BRANCH_PYTHON = (3, 14)
# Concurrency libraries coverage measures only through its tracers, not through sys.monitoring.
_SYSMON_CONCURRENCY = ("greenlet", "eventlet", "gevent")


def _project_coverage_table(root: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    table = document.get("tool", {}).get("coverage", {})
    return table if isinstance(table, dict) else {}


def _ini_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "".join(f"\n    {v}" for v in value)
    return str(value)


def render_rc(sections: Mapping[str, Mapping[str, object]]) -> str:
    """An INI rc file from ``{section: {key: value}}``; lists become coverage's multi-line lists."""
    out = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out += [f"{key} = {_ini_value(value)}" for key, value in values.items()]
        out.append("")
    return "\n".join(out)


@dataclass(frozen=True)
class CoreChoice:
    """The measurement core asked of coverage (None: coverage's own default) and why."""

    core: str | None
    why: str

    def line(self) -> str:
        return f"coverage core {self.core or 'default (ctrace)'}: {self.why}"


def choose_core(
    python: tuple[int, int] | None,
    run: Mapping[str, object],
    environ_core: str | None = None,
    test_contexts: bool = False,
) -> CoreChoice:
    """Coverage's fastest core that can measure what ``run`` (the rc file's ``[run]``) asks
    for on the session's ``python``: sysmon where sys.monitoring can do it all, else coverage's
    default. A core the user chose is kept: ``environ_core`` (COVERAGE_CORE, which coverage
    lets win over any rc file), then the project's ``[tool.coverage.run] core``.
    ``test_contexts``: the run switches coverage's context per test (the ``--affected`` map)."""
    if environ_core:
        return CoreChoice(environ_core, "set by the environment variable COVERAGE_CORE")
    if run.get("core"):
        return CoreChoice(str(run["core"]), "set by [tool.coverage.run] core")
    obstacle = sysmon_obstacle(python, run, test_contexts)
    if obstacle:
        return CoreChoice(None, obstacle)
    assert python is not None  # no obstacle: the version is known
    what = "branches" if run.get("branch") else "lines"
    return CoreChoice(
        "sysmon", f"Python {python[0]}.{python[1]} has sys.monitoring, which measures {what}"
    )


def sysmon_obstacle(
    python: tuple[int, int] | None, run: Mapping[str, object], test_contexts: bool = False
) -> str | None:
    """Why coverage's sysmon core cannot measure ``run`` on ``python``, or None. The same
    conditions as coverage's own (coverage/core.py), said so that the user can act on them."""
    if run.get("timid"):
        return "[tool.coverage.run] timid asks for the Python tracer"
    if python is None:
        return "the session's Python version is unknown"
    version = f"{python[0]}.{python[1]}"
    if python < SYSMON_PYTHON:
        return f"Python {version} has no sys.monitoring (3.12 and later)"
    if run.get("branch") and python < SYSMON_BRANCH_PYTHON:
        return (
            f"sys.monitoring measures branches only from Python 3.14, this is {version}; "
            "[tool.noxlib.coverage] branch = false would use sysmon here (line coverage only)"
        )
    if test_contexts:
        # sys.monitoring stops reporting a line once it has been seen, so every test after the
        # first to run a line would be missing from the map, and --affected would skip it.
        return "the --affected map switches coverage's context per test, which needs a tracer"
    return _needs_a_tracer(run)


def _needs_a_tracer(run: Mapping[str, object]) -> str | None:
    """A setting in ``run`` that only coverage's tracers (ctrace, pytrace) support."""
    if run.get("plugins") or run.get("dynamic_context"):
        return "coverage plugins and dynamic contexts need its C tracer"
    concurrency = run.get("concurrency", [])
    named = [concurrency] if isinstance(concurrency, str) else concurrency
    clash = [c for c in _SYSMON_CONCURRENCY if isinstance(named, list) and c in named]
    if clash:
        return f"concurrency = {clash[0]} needs coverage's C tracer"
    return None


def venv_python(venv: Path) -> tuple[int, int] | None:
    """The Python version of the venv at ``venv``, from its pyvenv.cfg (venv writes
    ``version``, virtualenv and uv ``version_info``); None when it cannot be read."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            parts = value.strip().split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return int(parts[0]), int(parts[1])
    return None


def core_for_run(
    root: Path,
    settings: CoverageSettings,
    python: tuple[int, int] | None,
    test_contexts: bool = False,
) -> CoreChoice:
    """The core a run of the project at ``root`` on ``python`` measures with, and why."""
    run = run_settings(root, settings, Path())["run"]
    return choose_core(python, run, os.environ.get("COVERAGE_CORE"), test_contexts)


def run_settings(
    root: Path,
    settings: CoverageSettings,
    data_dir: Path,
    python: tuple[int, int] | None = None,
    test_contexts: bool = False,
) -> dict[str, dict[str, object]]:
    """The project's ``[tool.coverage]`` with what a parallel-safe run needs laid on top.

    One data file per process (``parallel``), Python subprocesses measured (``patch``), data
    saved on SIGTERM, everything landing in the run's ``data_dir`` where the post phase
    combines it. With the session's ``python`` known, the fastest core that can measure it
    (``choose_core``).
    """
    sections: dict[str, dict[str, object]] = {
        name: dict(values)
        for name, values in _project_coverage_table(root).items()
        if isinstance(values, dict)
    }
    run = sections.setdefault("run", {})
    run.update(
        parallel=True,
        patch=sorted({*_listed(run.get("patch")), "subprocess"}),
        sigterm=True,
        data_file=str(data_dir / DATA_FILE),
        branch=settings.branch,
    )
    if settings.source:
        run["source"] = list(settings.source)
    _omit_noxlib(run, root)
    if python is not None:
        core = choose_core(python, run, test_contexts=test_contexts).core
        if core:
            run["core"] = core
    return sections


def _omit_noxlib(run: dict[str, object], root: Path) -> None:
    """Leave noxlib's own files out of the project's coverage when they lie outside the
    project: an editable or path install of noxlib sits outside site-packages, where coverage
    would measure its plugin as the project's code and judge fail-under on it."""
    if NOXLIB_PACKAGE.is_relative_to(root.resolve()):
        return  # noxlib measuring itself
    run["omit"] = [*_listed(run.get("omit")), str(NOXLIB_PACKAGE / "*")]


def _listed(value: object) -> list[str]:
    """A coverage list setting as TOML may hold it: absent, one string, or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def write_rcfile(
    root: Path,
    settings: CoverageSettings,
    run_dir: Path,
    python: tuple[int, int] | None = None,
    test_contexts: bool = False,
) -> Path:
    """Write the run's coverage rc file into ``run_dir`` and return its path; the data files
    go to ``run_dir/coverage/``. ``python`` is the version of the venv that measures."""
    data_dir = run_dir / "coverage"
    data_dir.mkdir(exist_ok=True)
    path = run_dir / "coveragerc"
    sections = run_settings(root, settings, data_dir, python, test_contexts)
    path.write_text(render_rc(sections), encoding="utf-8")
    return path
