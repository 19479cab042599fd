"""Real third-party test suites, from their PyPI sdists, to measure noxlib against plain pytest.

prepare(name, dest) extracts a pinned sdist (downloaded once into a cache) to ``dest``, adds
noxlib's one-line noxfile and a ``[tool.noxlib]`` table, and makes ``dest/.bench-venv``: the
plain venv a user would otherwise run ``pytest`` in (the project, its test dependencies,
pytest and pytest-xdist). check(name, dest) runs plain ``pytest`` there, then noxlib's sessions
and engines (CHECK_RUNS: ``tests``, ``tests-parallel``, ``tests-parallel`` with each engine,
``ci`` without coverage), and compares their outcome counts and, test by test, their node ids
and outcomes (plain pytest's from ``--collect-only`` and its short summary, noxlib's from
``reports/results.jsonl``); it exits non-zero on any difference, and when a noxlib run's log
does not say that every collected test ran once. time_command() and rounds()
time whole commands in interleaved rounds, for this script's ``time`` command and for other
benchmark scripts.

Usage, with an interpreter that has noxlib installed (``pip install -e '.[uv]'``):

  python benchmarks/real_suites.py prepare [NAME ...]
  python benchmarks/real_suites.py check [NAME ...]
  python benchmarks/real_suites.py time [NAME ...] [--rounds 3]

``--nox-python PYTHON`` runs nox (and so noxlib) with another interpreter, e.g. one whose
noxlib is installed from a snapshot of a commit while the checkout is being edited.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: noxlib depends on tomli there
    import tomli as tomllib

CACHE = Path.home() / ".cache" / "noxlib-bench"
NOXFILE = "import noxlib\n\nnoxlib.register_sessions()\n"
VENV = ".bench-venv"
MARKER = ".bench-suite"  # in dest: which sdist this folder was prepared from
# The outcomes noxlib counts (noxlib.reports.OUTCOMES), in the order of the table; plain
# pytest has no timeout or crashed, so a test noxlib counts so shows as a difference.
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "timeout", "crashed")
# What noxlib's log says when its books show every collected test reported exactly once;
# check fails when a noxlib run's log does not say it.
RAN_ONCE = "every collected test ran once"


@dataclass(frozen=True)
class Suite:
    name: str  # on PyPI
    version: str
    why: str
    ci: str  # what the project's own CI runs, for the record
    group: str | None  # PEP 735 dependency group with the test dependencies
    requirements: tuple[str, ...] = ()  # test dependencies when there is no group
    tests: tuple[str, ...] = ("tests",)  # test paths: noxlib's group
    coverage_source: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()  # what its CI adds to plain pytest, besides workers
    # Tests that fail here for reasons outside noxlib, deselected in every run (plain and
    # noxlib alike): timed commands must exit 0.
    deselect: tuple[str, ...] = ()

    def args(self) -> tuple[str, ...]:
        """pytest arguments for every run of this suite, plain or through noxlib."""
        return (*self.pytest_args, *(f"--deselect={test}" for test in self.deselect))


SUITES = {
    s.name: s
    for s in (
        Suite(
            "attrs",
            "26.1.0",
            why="1,386 tests, many driven by hypothesis; strict config (xfail_strict, "
            "--strict-markers, --import-mode=importlib)",
            ci="tox py3X-tests: [coverage run -m] pytest -n auto, dependency group 'tests'",
            group="tests",
            coverage_source=("attr", "attrs"),
            # pipe() asks inspect.signature() for a Converter's return type on Python >= 3.11,
            # which raises TypeError on CPython 3.11.7 and 3.12.1 (fine on 3.13.0).
            deselect=("tests/test_converters.py::TestPipe::test_wrapped_annotation",),
        ),
        Suite(
            "packaging",
            "26.3",
            why="62,423 tiny parametrized tests (addopts deselects 427 property tests): "
            "per-test overhead dominates",
            ci="nox tests: coverage run -m pytest, dependency group 'test', install -e.",
            group="test",
            coverage_source=("packaging",),
        ),
        Suite(
            "pluggy",
            "1.7.0",
            why="219 fast tests, pytest config in tox.ini (filterwarnings = error): "
            "start-up cost dominates",
            ci="tox: [coverage run -m] pytest, dependency group 'testing'",
            group="testing",
            tests=("testing",),
            coverage_source=("pluggy",),
        ),
    )
}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without noxlib's and pytest's variables (a run must not inherit them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOXLIB_", "PYTEST_"))}
    env.pop("VIRTUAL_ENV", None)
    return {**env, **extra}


def venv_env(dest: Path) -> dict[str, str]:
    """The environment of a user who activated dest's plain venv."""
    venv = dest / VENV
    return clean_env(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")


def run(argv: Sequence[object], cwd: Path | None = None) -> None:
    print("+", " ".join(map(str, argv)), flush=True)
    subprocess.run([str(a) for a in argv], cwd=cwd, check=True)


def sdist(suite: Suite, cache: Path = CACHE) -> Path:
    """The suite's sdist, downloaded into ``cache`` the first time."""
    folder = cache / "sdists" / f"{suite.name}-{suite.version}"
    found = sorted(folder.glob("*.tar.gz"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        spec = f"{suite.name}=={suite.version}"
        pip = [sys.executable, "-m", "pip", "download", "--no-binary=:all:", "--no-deps", spec]
        run([*pip, "-d", folder])
        found = sorted(folder.glob("*.tar.gz"))
    return found[0]


def group_requirements(pyproject: Mapping[str, Any], group: str) -> list[str]:
    """The requirements of a PEP 735 dependency group, its include-group entries expanded."""
    found: list[str] = []
    for item in pyproject["dependency-groups"][group]:
        found += (
            group_requirements(pyproject, item["include-group"])
            if isinstance(item, dict)
            else [item]
        )
    return found


def test_requirements(suite: Suite, dest: Path) -> list[str]:
    if suite.group is None:
        return list(suite.requirements)
    pyproject = tomllib.loads((dest / "pyproject.toml").read_text(encoding="utf-8"))
    return group_requirements(pyproject, suite.group) + list(suite.requirements)


def noxlib_table(suite: Suite, requirements: Sequence[str]) -> str:
    """The ``[tool.noxlib]`` table a user of noxlib would add (TOML arrays are JSON arrays)."""
    coverage = f"\n[tool.noxlib.coverage]\nsource = {json.dumps(list(suite.coverage_source))}\n"
    return f"""
# Added by noxlib's benchmarks/real_suites.py
[tool.noxlib]
install = ["-e", "."]
test-requirements = {json.dumps(list(requirements))}
{coverage if suite.coverage_source else ""}
[tool.noxlib.groups.tests]
paths = {json.dumps(list(suite.tests))}
description = "{suite.name}'s own test suite"
"""


def extract(suite: Suite, dest: Path, cache: Path) -> None:
    """The sdist's files in ``dest``, with noxlib's noxfile and table; all or nothing."""
    key = f"{suite.name}=={suite.version}"
    marker = dest / MARKER
    if marker.is_file() and marker.read_text() == key:
        return
    if dest.exists():
        if not marker.is_file():
            raise SystemExit(f"{dest} exists and was not prepared by this script; remove it")
        shutil.rmtree(dest)  # ours, from another version
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        with tarfile.open(sdist(suite, cache)) as archive:
            archive.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        (top / "noxfile.py").write_text(NOXFILE, encoding="utf-8")
        pyproject = top / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
        text += noxlib_table(suite, test_requirements(suite, top))
        tomllib.loads(text)  # still valid TOML
        pyproject.write_text(text, encoding="utf-8")
        (top / MARKER).write_text(key)
        top.rename(dest)


def make_venv(suite: Suite, dest: Path) -> None:
    """dest/.bench-venv with what a user would install to run the suite with plain pytest."""
    venv = dest / VENV
    python = venv / "bin" / "python"
    args = ["-e", ".", *test_requirements(suite, dest), "pytest", "pytest-xdist"]
    stamp = venv / ".bench-installed"
    if stamp.is_file() and json.loads(stamp.read_text()) == args:
        return
    if find_spec("uv"):
        uv = [sys.executable, "-m", "uv"]
        run([*uv, "venv", "--clear", "--python", sys.executable, venv], cwd=dest)
        run([*uv, "pip", "install", "--python", python, *args], cwd=dest)
    else:
        run([sys.executable, "-m", "venv", "--clear", venv], cwd=dest)
        run([python, "-m", "pip", "install", *args], cwd=dest)
    stamp.write_text(json.dumps(args))


def prepare(name: str, dest: Path, cache: Path = CACHE) -> Path:
    """``dest`` ready to run ``name``'s suite with plain pytest and with noxlib; idempotent."""
    suite = SUITES[name]
    extract(suite, dest, cache)
    make_venv(suite, dest)
    return dest


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] | None = None


def plain_pytest(name: str, dest: Path, *extra: str) -> Command:
    python = str(dest / VENV / "bin" / "python")
    return Command((python, "-m", "pytest", *SUITES[name].args(), *extra), dest, venv_env(dest))


def nox(
    name: str,
    dest: Path,
    *nox_args: str,
    nox_python: str = sys.executable,
    options: Sequence[str] = (),
    **env: str,
) -> Command:
    """``nox NOX_ARGS`` in dest with noxlib; noxlib's ``options``, then the suite's pytest
    args, go after ``--``; ``env`` adds variables."""
    after = (*options, *SUITES[name].args())
    posargs = ("--", *after) if after else ()
    return Command((nox_python, "-m", "nox", *nox_args, *posargs), dest, clean_env(**env))


def benchmark_commands(
    name: str, dest: Path, nox_python: str = sys.executable
) -> dict[str, Command]:
    """What a user would otherwise run, and noxlib with a reused venv, serial and parallel."""
    return {
        "pytest": plain_pytest(name, dest),
        "pytest -n 2": plain_pytest(name, dest, "-n", "2"),
        "nox -R -s tests": nox(name, dest, "-R", "-s", "tests", nox_python=nox_python),
        "nox -R -s tests-parallel": nox(
            name, dest, "-R", "-s", "tests-parallel", nox_python=nox_python
        ),
        "tests-parallel --engine shards": nox(
            name,
            dest,
            "-R",
            "-s",
            "tests-parallel",
            nox_python=nox_python,
            options=("--engine", "shards"),
        ),
        "tests-parallel --engine xdist": nox(
            name,
            dest,
            "-R",
            "-s",
            "tests-parallel",
            nox_python=nox_python,
            options=("--engine", "xdist"),
        ),
        "PYTEST_WORKERS=1 tests-parallel": nox(
            name, dest, "-R", "-s", "tests-parallel", nox_python=nox_python, PYTEST_WORKERS="1"
        ),
    }


# -- timing ------------------------------------------------------------------------------------


class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        failures = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
        super().__init__(f"{' '.join(argv)} exited {returncode}: {failures or output[-2000:]}")
        self.output = output


def time_command(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> float:
    """Wall time of the whole command, in seconds; it must exit 0 (output is captured)."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise CommandFailed(argv, done.returncode, done.stdout + done.stderr)
    return seconds


def rounds(
    configs: Mapping[str, Command], n: int, log: Callable[[str], None] | None = None
) -> dict[str, float]:
    """Median wall time of each config over ``n`` rounds. Each round runs every config once,
    starting one config later than the last round, so load drifts and cache warmth hit all.
    A run that fails (a flaky test, say) is logged and left out of its config's median;
    a config with no successful run gets NaN."""
    names = list(configs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            config = configs[name]
            try:
                seconds = time_command(config.argv, config.cwd, config.env)
            except CommandFailed as exc:
                if log:
                    log(f"round {i + 1}: {name}: not counted: {exc}")
                continue
            times[name].append(seconds)
            if log:
                log(f"round {i + 1}: {name}: {seconds:.2f} s")
    return {name: statistics.median(v) if v else math.nan for name, v in times.items()}


# -- outcome counts ----------------------------------------------------------------------------

SUMMARY_WORD = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)\b")


def pytest_counts(output: str) -> dict[str, int]:
    """Outcome counts from pytest's final summary line, e.g. '== 3 passed, 1 error in 2.1s =='."""
    for line in reversed(output.splitlines()):
        found = SUMMARY_WORD.findall(line)
        if found and re.search(r" in [\d.]+s", line):
            counts = dict.fromkeys(OUTCOMES, 0)
            for number, word in found:
                counts["error" if word.startswith("error") else word] = int(number)
            return counts
    raise ValueError("no pytest summary line in the output")


def last_run(dest: Path) -> dict[str, Any]:
    """The last run's line of noxlib's reports/ci_timings.jsonl."""
    last = (dest / "reports" / "ci_timings.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    return dict(json.loads(last))


def noxlib_counts(dest: Path) -> dict[str, int]:
    """Counts of the last run, from noxlib's reports/ci_timings.jsonl; an outcome this script
    does not know (one noxlib added since) is kept, so that the table shows it."""
    counts = last_run(dest)["counts"]
    return {**dict.fromkeys(OUTCOMES, 0), **{k: int(v) for k, v in counts.items()}}


def logged(command: Command, log: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` to its end, whatever its exit code, with its output kept in ``log``;
    says the command, its exit code and its wall time (the check's own record of them), and
    gives the finished process and that wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        command.argv, cwd=command.cwd, env=command.env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    log.parent.mkdir(exist_ok=True)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    print(f"{seconds:7.1f} s  exit {done.returncode}  {' '.join(command.argv)}", flush=True)
    return done, seconds


# -- test ids ----------------------------------------------------------------------------------

# Plain pytest's short summary with one line per test, whatever its outcome: skips unfolded
# (folded, a line names a reason, not a test), messages cut to their first line even under CI
# (a message's next line could otherwise pass for a test's), no colour codes around the ids.
SUMMARY_ARGS = ("-rfEsxXp", "--no-fold-skipped", "--force-short-summary", "--color=no")
SUMMARY_WORDS = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "SKIPPED": "skipped",
    "XFAIL": "xfailed",
    "XPASS": "xpassed",
}
NO_RESULT = "(no result)"  # collected by plain pytest, named by no line of its summary
SHOWN_DIFFERENCES = 20  # per session on the terminal; all of them go to a file


def plain_ids(name: str, dest: Path, log: Path) -> list[str]:
    """The node ids plain pytest collects, after the suite's deselection, in pytest's words."""
    # --verbosity=-1 comes after the suite's addopts: one id a line, whatever -q or -v they add.
    done, _ = logged(plain_pytest(name, dest, "--collect-only", "--verbosity=-1"), log)
    ids: list[str] = []
    for line in done.stdout.splitlines():
        if not line.strip():
            break  # the ids end at the first blank line; errors and the summary follow
        ids.append(line)
    if not ids:
        raise RuntimeError(f"plain pytest --collect-only listed no test; see {log}")
    return ids


def summary_nodeid(word: str, rest: str, known: set[str], root: Path) -> str | None:
    """The node id a summary line names, ``rest`` being the line after its ``word``: ``ID`` or
    ``ID - message``. An id may hold `` - `` itself (a parameter), so the longest known one
    wins. An unknown one counts only as an error of a file of ``root`` (one that failed to
    collect): a skip's or xfail's reason is not cut to one line, and its next line may read
    like a test's line; such a line gives None."""
    rest = re.sub(r"^at \w+ of ", "", rest)  # "XFAIL at setup of ID"
    ends = [len(rest), *reversed([m.start() for m in re.finditer(" - ", rest)])]
    for end in ends:
        if rest[:end] in known:
            return rest[:end]
    nodeid = rest.partition(" - ")[0]
    is_file = bool(nodeid) and (root / nodeid.split("::")[0]).exists()
    return nodeid if word == "ERROR" and is_file else None


def one_outcome(words: Sequence[str]) -> str:
    """A test's one outcome from its summary lines, as noxlib records it: an error at teardown
    makes a passed test an error; after a failure, skip or xfail that outcome stands (pytest
    counts such a test twice, noxlib once)."""
    kept = [w for w in words if w not in ("error", "passed")]
    if kept:
        return kept[0]
    return "error" if "error" in words else "passed"


def summary_outcomes(output: str, ids: Sequence[str], root: Path) -> dict[str, str]:
    """Each test's outcome in plain pytest's short summary (run with SUMMARY_ARGS): every one
    of ``ids`` (NO_RESULT when no line names it), and any other id a line names."""
    known = set(ids)
    lines = output.splitlines()
    # Only the summary: a test's own output, in a failure's section, may look like its lines.
    start = next((i for i, line in enumerate(lines) if "short test summary info" in line), None)
    if start is None:
        raise ValueError("no short test summary in plain pytest's output")
    words: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        word, _, rest = line.partition(" ")
        nodeid = summary_nodeid(word, rest, known, root) if word in SUMMARY_WORDS else None
        if nodeid is not None:
            words.setdefault(nodeid, []).append(SUMMARY_WORDS[word])
    outcomes = dict.fromkeys(ids, NO_RESULT)
    outcomes.update({nodeid: one_outcome(found) for nodeid, found in words.items()})
    return outcomes


def _how_split(said: str) -> str:
    """ ", by file" (", by function" when a file was split finer) when the log says the shards
    collected only their own files; "" otherwise."""
    if "shards collect only their own files" not in said:
        return ""
    return ", by function" if "and by function within" in said else ", by file"


def noxlib_outcomes(dest: Path) -> tuple[dict[str, str], list[str]]:
    """Each test's outcome in noxlib's reports/results.jsonl (its first line, as noxlib's merge
    keeps the first), and the ids that have more than one line there."""
    outcomes: dict[str, str] = {}
    repeated: list[str] = []
    text = (dest / "reports" / "results.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines():
        record = json.loads(line)
        nodeid = str(record["nodeid"])
        if nodeid in outcomes:
            repeated.append(nodeid)
        outcomes.setdefault(nodeid, str(record["outcome"]))
    return outcomes, repeated


def id_differences(
    plain: Mapping[str, str], noxlib: Mapping[str, str], repeated: Sequence[str] = ()
) -> list[str]:
    """One line per test that is not the same in both: missing from noxlib, extra in noxlib,
    another outcome, or more than one line in noxlib's results."""
    both = plain.keys() & noxlib.keys()
    lines = [f"missing  {i} (plain pytest: {plain[i]})" for i in sorted(plain.keys() - both)]
    lines += [f"extra    {i} (noxlib: {noxlib[i]})" for i in sorted(noxlib.keys() - both)]
    lines += [
        f"outcome  {i}: plain pytest {plain[i]}, noxlib {noxlib[i]}"
        for i in sorted(both)
        if plain[i] != noxlib[i]
    ]
    lines += [f"repeated {i} (more than one line in results.jsonl)" for i in sorted(repeated)]
    return lines


def report_ids(label: str, total: int, differences: Sequence[str], out: Path) -> None:
    """Say whether ``label``'s tests were plain pytest's; the whole list goes to ``out``."""
    if not differences:
        out.unlink(missing_ok=True)  # an earlier run's list would read as this one's
        print(f"{label}: the same {total} node ids with the same outcomes as plain pytest")
        return
    out.write_text("".join(line + "\n" for line in differences), encoding="utf-8")
    kinds = ", ".join(f"{n} {k}" for k, n in Counter(d.split()[0] for d in differences).items())
    print(f"{label}: {len(differences)} DIFFERENCES in node ids ({kinds}; all in {out}):")
    for line in differences[:SHOWN_DIFFERENCES]:
        print(f"  {line}")
    if len(differences) > SHOWN_DIFFERENCES:
        print(f"  ... and {len(differences) - SHOWN_DIFFERENCES} more")


# -- check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoxlibRun:
    """One noxlib run that check compares with plain pytest: ``nox -s SESSION -- OPTIONS`` and
    the suite's pytest arguments (its deselections included, as in every plain run), with
    ``env`` added; ``key`` names its files in reports/ (log, results, differences)."""

    key: str
    session: str
    options: tuple[str, ...] = ()  # noxlib's, after --
    env: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        env = "".join(f"{k}={v} " for k, v in self.env)
        options = f" -- {' '.join(self.options)}" if self.options else ""
        return f"{env}nox -s {self.session}{options}"


# In this order: tests-parallel plans from the durations the serial run just recorded.
CHECK_RUNS = (
    NoxlibRun("tests", "tests"),
    NoxlibRun("tests-parallel", "tests-parallel"),
    NoxlibRun("shards", "tests-parallel", ("--engine", "shards"), (("PYTEST_WORKERS", "2"),)),
    NoxlibRun("xdist", "tests-parallel", ("--engine", "xdist"), (("PYTEST_WORKERS", "2"),)),
    NoxlibRun("ci", "ci", ("--no-coverage",)),
)


@dataclass(frozen=True)
class Checked:
    """What check found of one noxlib run, against plain pytest."""

    label: str
    total: int  # ids in its results.jsonl
    differences: list[str]
    said_once: bool  # its log says RAN_ONCE

    @property
    def ok(self) -> bool:
        return not self.differences and self.said_once


def check(name: str, dest: Path, nox_python: str = sys.executable) -> bool:
    """Plain pytest, then each of CHECK_RUNS on the prepared suite: same outcome counts, the
    same node ids with the same outcomes, and noxlib's log saying every collected test ran
    once?"""
    reports = dest / "reports"
    ids = plain_ids(name, dest, reports / "plain-collect.log")
    plain, seconds = logged(plain_pytest(name, dest, *SUMMARY_ARGS), reports / "plain-pytest.log")
    expected = summary_outcomes(plain.stdout, ids, dest)
    rows = {f"plain pytest (exit {plain.returncode})": (pytest_counts(plain.stdout), seconds)}
    checked: dict[str, Checked] = {}
    for each in CHECK_RUNS:
        command = nox(
            name,
            dest,
            "-s",
            each.session,
            nox_python=nox_python,
            options=each.options,
            **dict(each.env),
        )
        done, seconds = noxlib_run(dest, command, reports / f"nox-{each.key}.log")
        said = done.stdout + done.stderr  # nox logs to stderr
        engine = f"{last_run(dest).get('engine') or '?'}{_how_split(said)}"
        label = f"{each.label()} [{engine}] (exit {done.returncode})"
        rows[label] = (noxlib_counts(dest), seconds)
        # Kept: the next session's run replaces results.jsonl.
        shutil.copyfile(reports / "results.jsonl", reports / f"results-{each.key}.jsonl")
        outcomes, repeated = noxlib_outcomes(dest)
        differences = id_differences(expected, outcomes, repeated)
        checked[each.key] = Checked(label, len(outcomes), differences, RAN_ONCE in said)
    same = report_counts(name, rows, reports)
    print(f"plain pytest collected {len(ids)} tests; its summary named {len(expected)} ids")
    for key, found in checked.items():
        report_ids(found.label, found.total, found.differences, reports / f"ids-{key}.txt")
        print(f"{found.label}: its log says {RAN_ONCE!r}: {'yes' if found.said_once else 'NO'}")
    return same and all(found.ok for found in checked.values())


def report_counts(
    name: str, rows: Mapping[str, tuple[Mapping[str, int], float]], reports: Path
) -> bool:
    """The table of each run's outcome counts and wall time; are the counts all the same?"""
    suite = SUITES[name]
    columns = list(dict.fromkeys(k for counts, _ in rows.values() for k in counts))
    width = max(map(len, rows)) + 2
    print(f"\n{suite.name} {suite.version}: outcome counts (logs in {reports})")
    print(f"{'':{width}}" + "".join(f"{k:>9}" for k in columns) + f"{'wall':>9}")
    for label, (counts, seconds) in rows.items():
        cells = "".join(f"{counts.get(k, 0):>9}" for k in columns)
        print(f"{label:{width}}{cells}{seconds:>8.1f}s")
    same = len({tuple(c.get(k, 0) for k in columns) for c, _ in rows.values()}) == 1
    print("identical" if same else "DIFFERENT")
    return same


def noxlib_run(
    dest: Path, command: Command, log: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``command``, a nox run that must add a line to reports/ci_timings.jsonl; the finished
    process and its wall time."""
    jsonl = dest / "reports" / "ci_timings.jsonl"
    runs_before = jsonl.read_text().count("\n") if jsonl.exists() else 0
    done, seconds = logged(command, log)
    if not jsonl.exists() or jsonl.read_text().count("\n") == runs_before:
        raise RuntimeError(f"{' '.join(command.argv)} exited {done.returncode} without a report")
    return done, seconds


# -- command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("prepare", "check", "time"))
    parser.add_argument("names", nargs="*", help=f"suites (default: all): {', '.join(SUITES)}")
    parser.add_argument("--work", type=Path, default=CACHE / "suites", help="suites go here")
    parser.add_argument("--cache", type=Path, default=CACHE, help="sdists are cached here")
    parser.add_argument("--rounds", type=int, default=3, help="for time: rounds (median)")
    parser.add_argument(
        "--nox-python", default=sys.executable, help="the interpreter that runs nox and noxlib"
    )
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}; known: {', '.join(SUITES)}")
    ok = True
    for name in args.names or list(SUITES):
        dest = prepare(name, args.work / name, args.cache)
        if args.command == "check":
            ok = check(name, dest, args.nox_python) and ok
        elif args.command == "time":
            configs = benchmark_commands(name, dest, args.nox_python)
            # nox -R needs both session venvs: make them, without running the tests.
            warm_up = nox(
                name,
                dest,
                "--install-only",
                "-s",
                "tests",
                "tests-parallel",
                nox_python=args.nox_python,
            )
            subprocess.run(warm_up.argv, cwd=dest, env=warm_up.env, check=True)
            medians = rounds(configs, args.rounds, log=lambda line: print(line, flush=True))
            print(f"\n{name} {SUITES[name].version}: median wall time of {args.rounds} rounds")
            for label, seconds in medians.items():
                print(f"  {label:26} {seconds:7.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
