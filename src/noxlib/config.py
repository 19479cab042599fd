"""``[tool.noxlib]`` of pyproject.toml, read and validated once into frozen dataclasses.

Validation collects every problem before it raises, so a user fixes the whole table in one go.
Each problem names the key, the value, the file and the fix.

The checks of single values, and the problem list that the sub-table readers share so that
every bad key is reported at once, are in configchecks.py.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

from noxlib.configchecks import (
    SCALARS,
    SESSION_NAMES,
    TRIAGE_SESSIONS,
    Problems,
    parse_size,
    positive_number,
    session_list,
    string_list,
    unknown_key,
)
from noxlib.coveragemap import DEFAULT_MAP_FILE
from noxlib.depgroups import resolve_groups
from noxlib.durationfiles import DurationFiles
from noxlib.durations import DEFAULT_DURATIONS_FILE
from noxlib.errors import ConfigError
from noxlib.markexpr import markers_problem
from noxlib.partrun import RELAUNCH_CAP
from noxlib.quarantine import Entry, read_entries
from noxlib.zeroconfig import ALL, ALL_DESCRIPTION, assume

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# What nox accepts as a session's python and a CI matrix can install: "3.12", free-threaded
# "3.13t", "pypy3.10".
PYTHON_VERSION = re.compile(r"^(?:pypy)?3\.\d+t?$")


@dataclass(frozen=True)
class Group:
    """A named set of test paths, optionally narrowed by a pytest ``-m`` expression."""

    name: str
    paths: tuple[str, ...]
    description: str = ""
    markers: str | None = None
    batch: str | None = None  # "file" or "group": run in batches, each its own pytest process
    batch_timeout: float | None = None  # seconds a batch may take before it is ended
    # False: the group's tests measure nothing of the coverage source (a differential suite of
    # other programs, benchmarks), so a run of such groups alone measures no coverage.
    coverage: bool = True


@dataclass(frozen=True)
class CoverageSettings:
    """How coverage is measured and judged; see docs/configuration.md."""

    enabled: bool = True
    sessions: tuple[str, ...] = ("ci",)
    source: tuple[str, ...] = ()
    branch: bool = True
    fail_under: float = 0.0


@dataclass(frozen=True)
class AffectedSettings:
    """The map ``--affected`` selects from; see docs/testing.md#only-what-a-change-affects."""

    record: bool = False  # opt-in: writing the map costs a ci run about a fifth more
    map_file: str = DEFAULT_MAP_FILE
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything noxlib reads from ``[tool.noxlib]``, with defaults filled in."""

    root: Path
    groups: Mapping[str, Group]
    default_groups: tuple[str, ...]
    install: tuple[str, ...] = (".",)
    test_requirements: tuple[str, ...] = ()
    # PEP 735 groups named by the dependency-groups setting, and what they resolve to.
    dependency_groups: tuple[str, ...] = ()
    group_requirements: tuple[str, ...] = ()
    # Python versions of the sessions: each session becomes one per version (tests-3.12).
    python: tuple[str, ...] = ()
    memory_per_worker: int = 2 * 2**30
    max_workers: int = 8
    dist: str = "load"
    engine: str = "auto"
    keep_together: str = "none"
    # After collection, pytest's objects leave the garbage collector's rounds (gc.freeze).
    gc_freeze: bool = True
    durations_file: str = DEFAULT_DURATIONS_FILE
    reports_dir: str = "reports"
    ci_timeout: float = 600.0
    reap_grace: float = 1.0
    # pytest processes a part may start in all, after deaths in its tests (xdist's
    # --max-worker-restart, for noxlib's parts).
    relaunch_cap: int = RELAUNCH_CAP
    report_all_tests: int = 50
    coverage: CoverageSettings = field(default_factory=CoverageSettings)
    affected: AffectedSettings = field(default_factory=AffectedSettings)
    # pytest's python_files, from [tool.pytest.ini_options]: which files a file batch runs.
    python_files: tuple[str, ...] = ("test_*.py", "*_test.py")
    # Triage of failures and the flakiness signal; see docs/testing.md#triage.
    triage: bool = True
    # The sessions that triage unless told: the serial inner loop pays only when it asks.
    triage_sessions: tuple[str, ...] = TRIAGE_SESSIONS
    triage_max: int = 50
    triage_reruns: int = 2
    # Seconds that the company reruns and polluter searches of one run may take together.
    triage_budget: float = 60.0
    tolerate_flaky: bool = False
    flaky_threshold: float = 5.0
    auto_rollback: bool = False
    # Tests whose failures do not fail the run (quarantine.py), each with its reason.
    quarantine: tuple[Entry, ...] = ()
    # What noxlib assumed for settings the project left out (zeroconfig.py).
    assumed: tuple[str, ...] = ()
    assumed_because: str = "no [tool.noxlib] table"

    @property
    def state_dir(self) -> Path:
        """Where run ledgers, locks and results live: ``.noxlib/`` in the project."""
        return self.root / ".noxlib"

    @property
    def reports_path(self) -> Path:
        return self.root / self.reports_dir

    @property
    def durations_path(self) -> Path:
        return self.root / self.durations_file

    @property
    def durations(self) -> DurationFiles:
        """The shared durations file and the local copy (durationfiles.py)."""
        return DurationFiles.of(self.root, self.durations_file, self.state_dir)

    @property
    def map_path(self) -> Path:
        return self.root / self.affected.map_file


_TABLES = ("groups", "coverage", "affected")
_LISTS = ("python", "quarantine")  # keys with a reader of their own: a message per bad item
_GROUP_KEYS = ("paths", "description", "markers", "batch", "batch-timeout", "coverage")
BATCH_MODES = ("file", "group")
_COVERAGE_KEYS = ("enabled", "sessions", "source", "branch", "fail-under")

_AFFECTED_KEYS = ("record", "map-file", "ignore")


def _read_group(root: Path, name: str, table: object, problems: Problems) -> Group | None:
    key = f"groups.{name}"
    if not GROUP_NAME.match(name):
        problems.add(key, name, "group names start with a letter and use letters, digits, - or _")
        return None
    example = f'\n[tool.noxlib.groups.{name}]\npaths = ["tests"]\n'
    if not _checked_table(table, problems, key, _GROUP_KEYS, example):
        return None
    paths = table.get("paths")
    if not string_list(paths) or not paths:
        problems.add(
            f"{key}.paths", paths, 'expected a non-empty list of paths, e.g. ["tests/unit"]'
        )
        paths = []
    for p in paths:
        if not (root / p).exists():
            problems.add(f"{key}.paths", p, f"no such path under {root}; create it or fix the path")
    description = table.get("description", "")
    if not isinstance(description, str):
        problems.add(f"{key}.description", description, "expected a string")
        description = ""
    markers = table.get("markers")
    if markers is not None and not (isinstance(markers, str) and markers.strip()):
        problems.add(f"{key}.markers", markers, 'expected a pytest -m expression, e.g. "not slow"')
        markers = None
    elif markers is not None and (why := markers_problem(markers)) is not None:
        problems.add(
            f"{key}.markers", markers, f'pytest cannot parse it as -m ({why}); e.g. "not slow"'
        )
        markers = None
    batch = table.get("batch")
    if batch is not None and batch not in BATCH_MODES:
        problems.add(
            f"{key}.batch",
            batch,
            'expected "file" (each test file its own process) or "group" (the group in one)',
        )
        batch = None
    timeout = table.get("batch-timeout")
    if timeout is not None and not (positive_number(timeout) and timeout > 0):
        problems.add(f"{key}.batch-timeout", timeout, "expected seconds above 0, e.g. 120")
        timeout = None
    coverage = table.get("coverage", True)
    if not isinstance(coverage, bool):
        problems.add(f"{key}.coverage", coverage, "expected true or false")
        coverage = True
    return Group(name, tuple(paths), description, markers, batch, timeout, coverage)


def _read_python(value: object, problems: Problems) -> tuple[str, ...]:
    """The ``python`` setting: a non-empty list of distinct version strings."""
    example = 'e.g. python = ["3.11", "3.12"]'
    if not isinstance(value, list) or not value:
        problems.add("python", value, f"expected a non-empty list of Python versions, {example}")
        return ()
    versions: list[str] = []
    for item in value:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            # TOML reads 3.10 as the number 3.1: only a string keeps the version.
            problems.add("python", item, f"a number; write each version as a string, {example}")
        elif not isinstance(item, str) or not PYTHON_VERSION.match(item):
            problems.add(
                "python",
                item,
                f'not a Python version nox can find; {example} ("3.13t" free-threaded, "pypy3.10")',
            )
        elif item in versions:
            problems.add("python", item, "listed twice; list each version once")
        else:
            versions.append(item)
    return tuple(versions)


def _checked_table(
    table: object, problems: Problems, key: str, known: tuple[str, ...], example: str
) -> TypeGuard[dict[str, Any]]:
    """True when ``table`` (at ``key``) is a table; each key it has that is not ``known`` is a
    problem of its own, with the close name."""
    if not isinstance(table, dict):
        problems.add(key, table, f"expected a table: {example}")
        return False
    for k in table:
        if k not in known:
            unknown_key(problems, f"{key}.", k, table[k], known)
    return True


def _read_coverage(table: object, problems: Problems) -> CoverageSettings:
    if not _checked_table(table, problems, "coverage", _COVERAGE_KEYS, "[tool.noxlib.coverage]"):
        return CoverageSettings()
    settings = CoverageSettings()
    for k in ("enabled", "branch"):
        if k in table and not isinstance(table[k], bool):
            problems.add(f"coverage.{k}", table[k], "expected true or false")
    sessions = table.get("sessions", ["ci"])
    if not session_list(sessions):
        problems.add(
            "coverage.sessions",
            sessions,
            f"expected a list of sessions that measure coverage, from {', '.join(SESSION_NAMES)}",
        )
    if "source" in table and not string_list(table["source"]):
        problems.add("coverage.source", table["source"], 'expected a list, e.g. ["mypkg"]')
    fail_under = table.get("fail-under", 0.0)
    if not positive_number(fail_under) or fail_under > 100:
        problems.add("coverage.fail-under", fail_under, "expected a percentage from 0 to 100")
        fail_under = 0.0
    if problems.messages:
        return settings
    return CoverageSettings(
        enabled=table.get("enabled", True),
        sessions=tuple(sessions),
        source=tuple(table.get("source", ())),
        branch=table.get("branch", True),
        fail_under=float(fail_under),
    )


def _read_affected(table: object, problems: Problems) -> AffectedSettings:
    if not _checked_table(table, problems, "affected", _AFFECTED_KEYS, "[tool.noxlib.affected]"):
        return AffectedSettings()
    before = len(problems.messages)
    record = table.get("record", False)
    if not isinstance(record, bool):
        problems.add(
            "affected.record",
            record,
            "expected true or false: whether the ci session records the map --affected uses",
        )
    map_file = table.get("map-file", DEFAULT_MAP_FILE)
    if not (isinstance(map_file, str) and map_file.strip()):
        problems.add(
            "affected.map-file",
            map_file,
            f'expected a file path relative to the project, e.g. "{DEFAULT_MAP_FILE}"',
        )
    ignore = table.get("ignore", [])
    if not string_list(ignore):
        problems.add(
            "affected.ignore",
            ignore,
            'expected a list of globs of files no test reads, e.g. ["docs/**", "*.md"]',
        )
    if len(problems.messages) > before:
        return AffectedSettings()
    return AffectedSettings(record=record, map_file=map_file, ignore=tuple(ignore))


def _read_groups(
    data: Mapping[str, Any], root: Path, problems: Problems
) -> tuple[dict[str, Group], list[str]]:
    """The groups of ``data`` and the default ones, each problem added to ``problems``."""
    if "groups" not in data:
        # No groups named: what plain pytest collects, as without a table (zeroconfig.py).
        raw_groups: object = {ALL: {}}
        groups = {ALL: Group(ALL, (), ALL_DESCRIPTION)}
    else:
        raw_groups, groups = data["groups"], {}
    if not isinstance(raw_groups, dict) or not raw_groups:
        problems.add(
            "groups",
            raw_groups,
            'define at least one group:\n[tool.noxlib.groups.unit]\npaths = ["tests"]\n',
        )
    elif not groups:
        for name, table in raw_groups.items():
            group = _read_group(root, name, table, problems)
            if group:
                groups[name] = group
    defaults = data.get("default-groups", list(raw_groups) if isinstance(raw_groups, dict) else [])
    if string_list(defaults):
        for name in defaults:
            if isinstance(raw_groups, dict) and name not in raw_groups:
                known_groups = ", ".join(raw_groups) or "none"
                problems.add("default-groups", name, f"no such group; groups are: {known_groups}")
    return groups, defaults


def parse_config(data: Mapping[str, Any], root: Path, source: Path) -> Config:
    """Validate the ``[tool.noxlib]`` table ``data`` of the project at ``root``.

    ``source`` is the file the table came from; every error message names it.
    """
    problems = Problems(source)
    known = (*SCALARS, *_TABLES, *_LISTS)
    for key, value in data.items():
        if key not in known:
            unknown_key(problems, "", key, value, known)
        elif key in SCALARS and not SCALARS[key][0](value):
            problems.add(key, value, SCALARS[key][1])
    groups, defaults = _read_groups(data, root, problems)
    coverage = _read_coverage(data.get("coverage", {}), problems)
    python = _read_python(data["python"], problems) if "python" in data else ()
    affected = _read_affected(data.get("affected", {}), problems)
    held, bad = read_entries(data["quarantine"], root, source) if "quarantine" in data else ([], [])
    problems.messages += bad
    problems.raise_if_any()
    return Config(
        root=root,
        groups=groups,
        default_groups=tuple(defaults),
        install=tuple(data.get("install", (".",))),
        test_requirements=tuple(data.get("test-requirements", ())),
        dependency_groups=tuple(data.get("dependency-groups", ())),
        python=python,
        memory_per_worker=parse_size(data.get("memory-per-worker", "2GiB")),
        max_workers=data.get("max-workers", 8),
        dist=data.get("dist", "load"),
        engine=data.get("engine", "auto"),
        keep_together=data.get("keep-together", "none"),
        gc_freeze=data.get("gc-freeze", True),
        durations_file=data.get("durations-file", DEFAULT_DURATIONS_FILE),
        reports_dir=data.get("reports-dir", "reports"),
        ci_timeout=float(data.get("ci-timeout", 600.0)),
        reap_grace=float(data.get("reap-grace", 1.0)),
        relaunch_cap=data.get("relaunch-cap", RELAUNCH_CAP),
        report_all_tests=data.get("report-all-tests", 50),
        coverage=coverage,
        affected=affected,
        triage=data.get("triage", True),
        triage_sessions=tuple(data.get("triage-sessions", TRIAGE_SESSIONS)),
        triage_max=data.get("triage-max", 50),
        triage_reruns=data.get("triage-reruns", 2),
        triage_budget=float(data.get("triage-budget", 60.0)),
        tolerate_flaky=data.get("tolerate-flaky", False),
        flaky_threshold=float(data.get("flaky-threshold", 5.0)),
        auto_rollback=data.get("auto-rollback", False),
        quarantine=tuple(held),
        assumed=() if "groups" in data else (f"group {ALL} = what plain pytest collects here",),
        assumed_because="no groups in the [tool.noxlib] table",
    )


def _assumed_config(root: Path, document: Mapping[str, Any]) -> Config:
    assumed = assume(root, document)
    return Config(
        root=root,
        groups={ALL: Group(ALL, (), ALL_DESCRIPTION)},
        default_groups=(ALL,),
        install=assumed.install,
        dependency_groups=assumed.dependency_groups,
        assumed=assumed.lines,
    )


def load_config(root: Path) -> Config:
    """Read and validate ``[tool.noxlib]`` from ``root/pyproject.toml``; without the table, or
    without the file, the settings zeroconfig.py assumes."""
    source = root / "pyproject.toml"
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _assumed_config(root, {})
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{source} is not valid TOML: {exc}. Fix the syntax and run again."
        ) from None
    table = document.get("tool", {}).get("noxlib")
    if table is None:
        config = _assumed_config(root, document)
    elif not isinstance(table, dict):
        raise ConfigError(f"tool.noxlib in {source} must be a table, not {table!r}.")
    else:
        config = parse_config(table, root, source)
    if config.dependency_groups and not config.group_requirements:
        requirements = resolve_groups(document, config.dependency_groups, source)
        config = replace(config, group_requirements=requirements)
    pytest_ini = document.get("tool", {}).get("pytest", {}).get("ini_options", {})
    python_files = pytest_ini.get("python_files") if isinstance(pytest_ini, dict) else None
    if isinstance(python_files, str):
        python_files = python_files.split()
    if string_list(python_files) and python_files:
        config = replace(config, python_files=tuple(python_files))
    return config
