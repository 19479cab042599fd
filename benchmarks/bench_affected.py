"""--affected on a real third-party suite: what the map costs, and whether the selection misses.

Two commands, on a suite of real_suites.py (its pinned sdist, made a git repository here):

  cost       ``nox -R -s ci`` with the map recorded (``[tool.noxlib.affected] record = true``: one
             coverage context per test) and without (``record = false``), in alternating
             rounds: wall time, the pytest phase, the combine-coverage phase (where the map is
             written), the map's size.
  mutations  one ``nox -s ci`` writes the map. Then single-line mutations of the library (flipped
             comparisons and booleans, changed constants) are tried one at a time: a mutation
             counts when the whole suite catches it (plain pytest -x fails); for each counted
             one, ``nox -R -s tests -- --affected`` must fail too. Prints, per mutation, the tests
             selected and the wall time, and at the end the misses, the median share selected,
             and the median --affected wall time against the full ``nox -R -s tests``.
             With ``--testmon``, pytest-testmon runs the same mutations in the same rounds: it
             is installed in the suite's plain venv, records with one full ``pytest --testmon``,
             and each mutation's ``pytest --testmon`` starts from that recording (its data file
             is put back before each), so both tools answer the same change.

  change     the time goal: after a one-function change that breaks nothing (a comment added
             to the first line of a function's body that the suite runs), the wall time of
             ``nox -R -s tests -- --affected`` against the full ``nox -R -s tests``, the full
             runs interleaved with the --affected ones (before the first change, then after
             every few). Prints each change's selection and time, then the medians and ratio.

Usage, with an interpreter that has noxlib installed:

  python benchmarks/bench_affected.py cost [SUITE] [--rounds 2]
  python benchmarks/bench_affected.py mutations [SUITE] [--want 25] [--tries 120]
  python benchmarks/bench_affected.py change [SUITE] [--want 10]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_suites import CACHE, SUITES, VENV, Command, nox, plain_pytest, prepare

WORK = Path("/tmp/noxlib-bench-affected")
GITIGNORE = ".bench-venv/\n.nox/\n.hypothesis/\n__pycache__/\n"
RECORD_ON = "\n[tool.noxlib.affected]\nrecord = true\n"
# Single-line mutations: (pattern, replacement), the first that matches a line is used.
OPERATORS = (
    (r" == ", " != "),
    (r" != ", " == "),
    (r" <= ", " > "),
    (r" >= ", " < "),
    (r" < ", " >= "),
    (r" > ", " <= "),
    (r" is not None", " is None"),
    (r" is None", " is not None"),
    (r" not in ", " in "),
    (r"\bTrue\b", "False"),
    (r"\bFalse\b", "True"),
    (r" and ", " or "),
    (r" or ", " and "),
    (r"\+ 1\b", "+ 2"),
    (r"- 1\b", "- 2"),
)
BANNER = re.compile(
    r"--affected: (?:([\d,]+) of (?:the map's )?([\d,]+) tests|every test, because (.*))"
)


def git(root: Path, *args: str) -> str:
    argv = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args]
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, check=True).stdout


def repository(name: str) -> Path:
    """The suite prepared under WORK, committed as a git repository (once)."""
    dest = prepare(name, WORK / name, CACHE)
    if not (dest / ".git").is_dir():
        (dest / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        git(dest, "init", "-q")
        git(dest, "add", "-A")
        git(dest, "commit", "-qm", f"{name} {SUITES[name].version} with noxlib's table")
    pyproject = dest / "pyproject.toml"
    if RECORD_ON not in pyproject.read_text(encoding="utf-8"):
        with pyproject.open("a", encoding="utf-8") as out:
            out.write(RECORD_ON)
        git(dest, "commit", "-qam", "record the --affected map")
    return dest


@dataclass(frozen=True)
class Ran:
    seconds: float
    returncode: int
    output: str


def run(command: Command, timeout: float = 1800) -> Ran:
    start = time.perf_counter()
    done = subprocess.run(
        list(command.argv),
        cwd=command.cwd,
        env=command.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return Ran(time.perf_counter() - start, done.returncode, done.stdout + done.stderr)


def last_phases(dest: Path) -> dict[str, float]:
    line = (dest / "reports" / "ci_timings.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    return {p["name"]: float(p["seconds"]) for p in json.loads(line)["phases"]}


# -- cost -----------------------------------------------------------------------------------


def cost(name: str, rounds: int) -> None:
    dest = repository(name)
    pyproject = dest / "pyproject.toml"
    committed = pyproject.read_text(encoding="utf-8")
    warm = run(nox(name, dest, "-s", "ci"))
    print(f"warm-up ci: exit {warm.returncode} in {warm.seconds:.1f} s", flush=True)
    figures: dict[str, list[tuple[float, float, float]]] = {"map": [], "no map": []}
    try:
        for i in range(rounds):
            order = ["map", "no map"] if i % 2 == 0 else ["no map", "map"]
            for label in order:
                off = committed.replace(RECORD_ON, RECORD_ON.replace("true", "false"))
                pyproject.write_text(off if label == "no map" else committed)
                done = run(nox(name, dest, "-R", "-s", "ci"))
                phases = last_phases(dest)
                row = (done.seconds, phases["pytest"], phases["combine-coverage"])
                figures[label].append(row)
                print(
                    f"round {i + 1} {label}: exit {done.returncode}, wall {row[0]:.1f} s, "
                    f"pytest {row[1]:.1f} s, combine-coverage {row[2]:.1f} s",
                    flush=True,
                )
    finally:
        pyproject.write_text(committed)
    for label, rows in figures.items():
        medians = [statistics.median(r[k] for r in rows) for k in range(3)]
        print(
            f"{label:7} median of {len(rows)}: wall {medians[0]:.1f} s, pytest {medians[1]:.1f} "
            f"s, combine-coverage {medians[2]:.1f} s"
        )
    size = (dest / ".test_affected").stat().st_size
    print(f"map file: {size / 1024:.0f} KiB")


# -- mutations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    path: Path
    line: int  # 1-based
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.old.strip()} -> {self.new.strip()}"


def library_files(name: str, dest: Path) -> list[Path]:
    found = []
    for package in SUITES[name].coverage_source:
        for base in (dest / "src" / package, dest / package):
            if base.is_dir():
                found += sorted(base.rglob("*.py"))
    return found


def body_lines(tree: ast.Module) -> Iterator[int]:
    """Lines of one-line statements inside functions, docstrings left out."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if inner is node or not isinstance(inner, ast.stmt):
                continue
            if isinstance(inner, ast.Expr) and isinstance(inner.value, ast.Constant):
                continue
            if inner.lineno == inner.end_lineno or isinstance(inner, (ast.If, ast.While)):
                yield inner.lineno


def candidates(name: str, dest: Path, seed: int = 12) -> list[Mutation]:
    found = []
    for path in library_files(name, dest):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        for number in sorted(set(body_lines(ast.parse(text)))):
            old = lines[number - 1]
            for pattern, replacement in OPERATORS:
                new = re.sub(pattern, replacement, old, count=1)
                if new != old:
                    found.append(Mutation(path, number, old, new))
                    break
    random.Random(seed).shuffle(found)
    return found


def apply(mutation: Mutation) -> str:
    text = mutation.path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    lines[mutation.line - 1] = mutation.new
    mutation.path.write_text("".join(lines), encoding="utf-8")
    return text


TESTMON_DATA = ".testmondata"
# --testmon-forceselect: testmon turns its selection off under -m or -k (packaging's addopts
# have -m "not property"); forced, it selects as it would without them.
TESTMON_ARGS = ("--testmon", "--testmon-forceselect")
# pytest-testmon reads the cache provider's options (--lf): its runs keep the plugin on.
PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


@dataclass(frozen=True)
class Testmon:
    """pytest-testmon in the suite's plain venv, from one recording run's data files.

    Its data is SQLite in WAL mode: the database, ``-wal`` and ``-shm`` files are saved and put
    back together (a database copied without its WAL reads as "malformed").
    """

    name: str
    dest: Path
    saved: Path

    @classmethod
    def record(cls, name: str, dest: Path) -> Testmon:
        python = str(dest / VENV / "bin" / "python")
        # Its data file is no change of the project's: git (and so --affected) must not see it.
        with (dest / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
            exclude.write(f"{TESTMON_DATA}*\n")
        install = [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", python]
        subprocess.run([*install, "pytest-testmon"], check=True)
        for old in dest.glob(f"{TESTMON_DATA}*"):
            old.unlink()
        done = run(plain_pytest(name, dest, *TESTMON_ARGS, "-q"), 1800)
        print(f"testmon recording: exit {done.returncode} in {done.seconds:.1f} s", flush=True)
        saved = WORK / f"{name}-testmon"
        shutil.rmtree(saved, ignore_errors=True)
        saved.mkdir(parents=True)
        for path in dest.glob(f"{TESTMON_DATA}*"):
            shutil.copyfile(path, saved / path.name)
        return cls(name, dest, saved)

    def select(self) -> tuple[int, int, float, bool]:
        """(tests run, tests collected, wall seconds, caught) of one ``pytest --testmon``.
        Caught: tests failed (1), collection failed (2), or a conftest did not import (4). An
        internal error of testmon's (3) is no catch: SystemExit with its output."""
        for old in self.dest.glob(f"{TESTMON_DATA}*"):
            old.unlink()
        for path in self.saved.iterdir():
            shutil.copyfile(path, self.dest / path.name)
        done = run(plain_pytest(self.name, self.dest, *TESTMON_ARGS, "-q"))
        if done.returncode not in (0, 1, 2, 4, 5):
            raise SystemExit(f"pytest --testmon exited {done.returncode}:\n{done.output[-3000:]}")
        tail = done.output.strip().splitlines()[-1] if done.output.strip() else ""
        counts = {word: int(n) for n, word in PYTEST_COUNTS.findall(tail)}
        deselected = counts.pop("deselected", 0)
        ran = sum(counts.values())
        return ran, ran + deselected, done.seconds, done.returncode in (1, 2, 4)


def mutations(name: str, want: int, tries: int, testmon: bool = False) -> int:
    dest = repository(name)
    git(dest, "checkout", "-q", "--", ".")
    mapped = run(nox(name, dest, "-s", "ci"))
    print(f"map: nox -s ci exit {mapped.returncode} in {mapped.seconds:.1f} s", flush=True)
    if not (dest / ".test_affected").is_file():
        print(mapped.output[-3000:])
        return 2
    run(nox(name, dest, "-s", "tests", "--install-only"))
    full = [run(nox(name, dest, "-R", "-s", "tests")).seconds for _ in range(3)]
    print(f"full nox -R -s tests: {[round(s, 1) for s in full]} s", flush=True)
    other = Testmon.record(name, dest) if testmon else None
    rows: list[Row] = []
    tried = 0
    for mutation in candidates(name, dest):
        if len(rows) >= want or tried >= tries:
            break
        tried += 1
        row = try_mutation(name, dest, mutation, other)
        if row is not None:
            rows.append(row)
    return summary(name, rows, tried, statistics.median(full))


@dataclass(frozen=True)
class Row:
    mutation: Mutation
    selected: int  # -1: every test
    total: int
    seconds: float
    caught: bool
    testmon: tuple[int, int, float, bool] | None = None  # its (run, collected, seconds, caught)


def try_mutation(
    name: str, dest: Path, mutation: Mutation, testmon: Testmon | None = None
) -> Row | None:
    """The --affected run of one mutation that the whole suite catches; None when it does not."""
    original = apply(mutation)
    other = None
    try:
        whole = run(plain_pytest(name, dest, "-x", "-q", "-p", "no:cacheprovider"), 900)
        if whole.returncode == 0:
            print(f"survives the whole suite, not counted: {mutation}", flush=True)
            return None
        options = ("--affected", "--no-triage")
        chosen = run(nox(name, dest, "-R", "-s", "tests", options=options))
        other = testmon.select() if testmon else None
    finally:
        mutation.path.write_text(original, encoding="utf-8")
    match = BANNER.search(chosen.output)
    if match is None:
        raise SystemExit(f"no --affected line in the output:\n{chosen.output[-3000:]}")
    if match.group(3):
        selected, total, what = -1, -1, f"every test ({match.group(3)})"
    else:
        selected = int(match.group(1).replace(",", ""))
        total = int(match.group(2).replace(",", ""))
        what = f"{selected} of {total} tests"
    row = Row(mutation, selected, total, chosen.seconds, chosen.returncode != 0, other)
    verdict = "caught" if row.caught else "MISSED"
    print(f"{verdict}: {mutation}: {what}, {chosen.seconds:.1f} s", flush=True)
    if other is not None:
        word = "caught" if other[3] else "MISSED"
        print(f"  testmon {word}: {other[0]} of {other[1]} tests, {other[2]:.1f} s", flush=True)
    return row


def summary(name: str, rows: Sequence[Row], tried: int, full_seconds: float) -> int:
    missed = [row.mutation for row in rows if not row.caught]
    # "every test" counts as the whole suite.
    shares = [row.selected / row.total if row.total > 0 else 1.0 for row in rows]
    print(f"\n{name} {SUITES[name].version}: {len(rows)} counted mutations of {tried} tried")
    print(f"missed: {len(missed)}" + "".join(f"\n  {m}" for m in missed))
    if shares:
        print(
            f"share selected: median {statistics.median(shares):.1%}, "
            f"max {max(shares):.1%}, min {min(shares):.1%}"
        )
    print(f"full run: median {full_seconds:.1f} s")
    if rows:
        median = statistics.median(row.seconds for row in rows)
        print(f"--affected run: median {median:.1f} s = {median / full_seconds:.2f} x the full run")
    theirs = [row.testmon for row in rows if row.testmon is not None]
    if theirs:
        print(
            f"pytest-testmon: missed {sum(1 for t in theirs if not t[3])}, share selected median "
            f"{statistics.median(t[0] / t[1] if t[1] else 1.0 for t in theirs):.1%}, "
            f"wall median {statistics.median(t[2] for t in theirs):.1f} s"
        )
    return 1 if missed else 0


# -- change ----------------------------------------------------------------------------------

CHANGED = "  # changed by bench_affected\n"


def first_body_lines(name: str, dest: Path, seed: int = 7) -> list[tuple[Path, int]]:
    """(file, line) of the first one-line statement of each function of the library, shuffled."""
    found = []
    for path in library_files(name, dest):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = [n for n in node.body if not _is_docstring(n)]
                if body and body[0].lineno == body[0].end_lineno:
                    found.append((path, body[0].lineno))
    random.Random(seed).shuffle(found)
    return found


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def change(name: str, want: int) -> int:
    dest = repository(name)
    git(dest, "checkout", "-q", "--", ".")
    if not (dest / ".test_affected").is_file():
        mapped = run(nox(name, dest, "-s", "ci"))
        print(f"map: nox -s ci exit {mapped.returncode} in {mapped.seconds:.1f} s", flush=True)
    run(nox(name, dest, "-s", "tests", "--install-only"))
    full: list[float] = []

    def full_run() -> None:
        whole = run(nox(name, dest, "-R", "-s", "tests"))
        full.append(whole.seconds)
        print(f"full nox -R -s tests: exit {whole.returncode}, {whole.seconds:.1f} s", flush=True)

    picked: list[tuple[float, float]] = []  # (share selected, seconds)
    full_run()
    for path, line in first_body_lines(name, dest):
        if len(picked) >= want:
            break
        row = try_change(name, dest, path, line)
        if row is not None:
            picked.append(row)
            if len(picked) % FULL_EVERY == 0:
                full_run()
    full_run()
    if not picked:
        return 1
    share = statistics.median(p[0] for p in picked)
    seconds = statistics.median(p[1] for p in picked)
    full_median = statistics.median(full)
    print(f"\n{name} {SUITES[name].version}: {len(picked)} one-function changes")
    print(f"share selected: median {share:.1%}, max {max(p[0] for p in picked):.1%}")
    print(f"full run: median {full_median:.1f} s of {len(full)}")
    print(f"--affected: median {seconds:.1f} s = {seconds / full_median:.2f} x the full run")
    return 0


FULL_EVERY = 4  # a full run after every this many --affected runs: both see the same load


def try_change(name: str, dest: Path, path: Path, line: int) -> tuple[float, float] | None:
    """(share selected, wall seconds) of ``--affected`` after changing ``line`` of ``path``;
    None when no test runs the line (nothing to measure) or the run did not pass."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].rstrip("\n") + CHANGED
    path.write_text("".join(lines), encoding="utf-8")
    try:
        chosen = run(nox(name, dest, "-R", "-s", "tests", options=("--affected",)))
    finally:
        path.write_text(text, encoding="utf-8")
    match = BANNER.search(chosen.output)
    if match is None or match.group(3) or chosen.returncode != 0:
        print(f"{path.name}:{line}: not counted (exit {chosen.returncode})", flush=True)
        return None
    selected, total = (int(match.group(k).replace(",", "")) for k in (1, 2))
    if selected == 0:
        print(f"{path.name}:{line}: no test runs this line, not counted", flush=True)
        return None
    print(f"{path.name}:{line}: {selected} of {total} tests, {chosen.seconds:.1f} s", flush=True)
    return selected / total, chosen.seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("cost", "mutations", "change"))
    parser.add_argument("name", nargs="?", default="attrs", choices=sorted(SUITES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--want", type=int, help="mutations: 25; change: 10")
    parser.add_argument("--tries", type=int, default=120)
    parser.add_argument("--testmon", action="store_true", help="mutations: pytest-testmon too")
    args = parser.parse_args(argv)
    if args.command == "cost":
        cost(args.name, args.rounds)
        return 0
    if args.command == "change":
        return change(args.name, args.want or 10)
    return mutations(args.name, args.want or 25, args.tries, args.testmon)


if __name__ == "__main__":
    sys.exit(main())
