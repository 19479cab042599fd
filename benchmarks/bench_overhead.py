"""What noxlib costs around pytest: per test, per run, and on the nox side, by suite size.

Suites: generated ones of tiny tests (``--sizes``, default 1, 1k, 10k, 100k and 200k; 1,000
tests a file) and real ones from their sdists (``--suites``, default packaging and attrs, as
benchmarks/real_suites.py prepares them). Configurations, run in interleaved rounds, each the
wall time of the whole command, reused venvs, coverage off:

  pytest           plain pytest in a venv without noxlib (what a user would otherwise run)
  plugin           pytest in noxlib's session venv with the plugin switched on as a part of a
                   run switches it on (NOXLIB_RUN_DIR and NOXLIB_PART_DIR): the per-test path
                   alone, without nox
  noxlib           ``PYTEST_WORKERS=1 nox -R -s tests -- --no-coverage``: one noxlib process
  tests-parallel   ``nox -R -s tests-parallel -- --no-coverage``
  pytest -n 2      plain pytest-xdist on the 2 cores

It reports, per suite: the medians and their ratios to plain pytest; the per-test cost in µs
of ``noxlib`` and ``plugin`` over plain pytest, with the fixed cost per run (the 1-test suite's
difference) taken out; noxlib's own phases on the nox side (from reports/ci_timings.jsonl:
merge, durations, report with the history, and the rest); and the nox process's peak memory.
``--markdown FILE`` writes the tables and a plot (a Mermaid chart, which GitHub draws) of the
per-test cost and the nox-side time against suite size, for docs/benchmarks.md.

Usage: python benchmarks/bench_overhead.py [--rounds 3] [--sizes 1,1000,...] [--suites ...]
           [--configs pytest,plugin,...] [--work DIR] [--markdown FILE]
       (needs nox and noxlib importable by this Python, as the README's setup gives)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_suites  # the sibling scripts: sdists, venvs, commands, a generated project's table
from bench_parallel import PYPROJECT
from real_suites import NOXFILE, Command, clean_env

CONFIGS = ("pytest", "plugin", "noxlib", "tests-parallel", "pytest -n 2")
NOX_CONFIGS = ("noxlib", "tests-parallel")  # the configurations that add a history line
POST_PHASES = ("reap", "merge", "durations", "triage", "combine-coverage", "report")
PER_FILE = 1000
TEST_FILE = """import pytest


@pytest.mark.parametrize("i", range({start}, {end}))
def test_tiny(i):
    assert i >= 0
"""


@dataclass
class Suite:
    """One suite's folder and the commands of each configuration."""

    name: str
    tests: int  # what plain pytest collects and runs
    folder: Path
    commands: dict[str, Command]
    repeat: int = 1  # rounds per round: a quick suite needs more of them to show µs per test
    generated: bool = False
    times: dict[str, list[float]] = field(default_factory=dict)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # jsonl lines

    def median(self, config: str) -> float:
        values = self.times.get(config) or [float("nan")]
        return statistics.median(values)


# -- suites ---------------------------------------------------------------------------------


def generated(size: int, work: Path, nox_python: str) -> Suite:
    """A project of ``size`` tiny tests, its plain venv, and noxlib's session venvs."""
    folder = work / f"gen-{size}"
    if not (folder / ".ready").exists():
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "tests").mkdir(parents=True)
        (folder / "noxfile.py").write_text(NOXFILE)
        (folder / "pyproject.toml").write_text(PYPROJECT)
        for start in range(0, size, PER_FILE):
            end = min(size, start + PER_FILE)
            text = TEST_FILE.format(start=start, end=end)
            (folder / "tests" / f"test_{start // PER_FILE:04d}.py").write_text(text)
        plain_venv(folder)
        install_sessions(folder, nox_python)
        (folder / ".ready").write_text("")
    python = str(folder / real_suites.VENV / "bin" / "python")
    plain = Command((python, "-m", "pytest", "tests"), folder, real_suites.venv_env(folder))
    found = commands(folder, plain, ("tests",), nox_python)
    return Suite(f"{size:,} tiny tests", size, folder, found, generated=True)


def plain_venv(folder: Path) -> None:
    venv = folder / real_suites.VENV
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, venv], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [*uv, "pip", "install", "-q", "-p", python, "pytest", "pytest-xdist"], check=True
    )


def install_sessions(folder: Path, nox_python: str) -> None:
    """noxlib's session venvs, so that ``nox -R`` reuses them."""
    argv = [nox_python, "-m", "nox", "--install-only", "-s", "tests", "tests-parallel"]
    subprocess.run(argv, cwd=folder, env=bench_env(), check=True, capture_output=True)


def real(name: str, work: Path, nox_python: str) -> Suite:
    folder = real_suites.prepare(name, work / name)
    args = real_suites.SUITES[name].args()
    install_sessions(folder, nox_python)
    plain = real_suites.plain_pytest(name, folder)
    found = collected(plain)
    label = f"{name} {real_suites.SUITES[name].version}"
    return Suite(label, found, folder, commands(folder, plain, args, nox_python))


def collected(plain: Command) -> int:
    argv = (*plain.argv, "--collect-only", "-q")
    done = subprocess.run(
        argv, cwd=plain.cwd, env=plain.env, capture_output=True, text=True, check=False
    )
    return sum(1 for line in done.stdout.splitlines() if "::" in line)


def bench_env(**extra: str) -> dict[str, str]:
    env = clean_env(**extra)
    env.pop("CI", None)  # CI mode would change what the sessions do
    return env


def commands(
    folder: Path, plain: Command, args: Sequence[str], nox_python: str
) -> dict[str, Command]:
    """Every configuration of one suite; ``args``: pytest's arguments (paths, deselections)."""
    nox = (nox_python, "-m", "nox", "-R", "-s")
    session_python = str(folder / ".nox" / "tests" / "bin" / "python")
    run_dir = folder / ".bench-plugin-run"
    plugin_env = bench_env(NOXLIB_RUN_DIR=str(run_dir), NOXLIB_PART_DIR=str(run_dir / "part"))
    after = ("--", "--no-coverage", *args[1 if args[:1] == ("tests",) else 0 :])
    return {
        "pytest": plain,
        "plugin": Command((session_python, "-m", "pytest", *args), folder, plugin_env),
        "noxlib": Command((*nox, "tests", *after), folder, bench_env(PYTEST_WORKERS="1")),
        "tests-parallel": Command((*nox, "tests-parallel", *after), folder, bench_env()),
        "pytest -n 2": Command((*plain.argv, "-n", "2"), folder, plain.env),
    }


# -- rounds ---------------------------------------------------------------------------------


def history(folder: Path) -> list[dict[str, Any]]:
    path = folder / "reports" / "ci_timings.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fresh_part(command: Command) -> None:
    """The plugin's run and part folders, new, as each run of noxlib makes them."""
    run_dir = (command.env or {}).get("NOXLIB_RUN_DIR")
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
        (Path(run_dir) / "part").mkdir(parents=True)


def timed(suite: Suite, config: str) -> None:
    command = suite.commands[config]
    fresh_part(command)
    before = len(history(suite.folder))
    seconds = real_suites.time_command(command.argv, command.cwd, command.env)
    suite.times.setdefault(config, []).append(seconds)
    if config in NOX_CONFIGS:
        lines = history(suite.folder)[before:]
        suite.runs.setdefault(config, []).extend(lines)
    print(f"  {suite.name}: {config}: {seconds:.2f} s", flush=True)


# A round of a suite whose plain run is quicker than this is repeated, up to MAX_REPEAT times.
ROUND_SECONDS = 10.0
MAX_REPEAT = 10


# A suite this large is warmed up by collecting only, and a generated one runs only the
# configurations the per-test cost needs (a round of 200,000 tests takes minutes a config).
LARGE = 50_000
LARGE_CONFIGS = ("pytest", "plugin", "noxlib")


def warm_up(suites: Sequence[Suite], configs: Sequence[str]) -> None:
    """One uncounted run of each (bytecode caches written, files in the page cache), which also
    sets how often each round repeats the suite."""
    print("warm-up round (not counted)", flush=True)
    for suite in suites:
        for config in configs_of(suite, configs):
            if suite.tests >= LARGE:
                command = suite.commands[config]
                fresh_part(command)
                argv = (*command.argv, "--collect-only", "-q")
                real_suites.time_command(argv, command.cwd, command.env)
            else:
                timed(suite, config)
        plain = suite.median("pytest")
        if "pytest" in suite.times:
            suite.repeat = max(1, min(MAX_REPEAT, round(ROUND_SECONDS / plain)))
        suite.times.clear()
        suite.runs.clear()


def configs_of(suite: Suite, configs: Sequence[str]) -> list[str]:
    if suite.generated and suite.tests >= LARGE:
        return [c for c in configs if c in LARGE_CONFIGS]
    return list(configs)


def interleaved(suites: Sequence[Suite], configs: Sequence[str], rounds: int) -> None:
    """Each round runs every config of every suite once, the configs' order shifted by one each
    round, so that load drifts and warm caches hit every config alike."""
    for i in range(rounds):
        print(f"round {i + 1} of {rounds}", flush=True)
        for suite in suites:
            mine = configs_of(suite, configs)
            order = mine[i % len(mine) :] + mine[: i % len(mine)]
            for _ in range(suite.repeat):
                for config in order:
                    timed(suite, config)


# -- figures --------------------------------------------------------------------------------


def phase_medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each phase's median seconds over ``runs`` (a phase a run lacks counts as 0)."""
    names = dict.fromkeys(str(p["name"]) for r in runs for p in r["phases"])
    return {
        name: statistics.median(
            sum(float(p["seconds"]) for p in r["phases"] if p["name"] == name) for r in runs
        )
        for name in names
    }


def paired_extra(suite: Suite, config: str) -> float:
    """The median over rounds of ``config``'s time minus plain pytest's in the same round: runs
    of one round are seconds apart, so a drift of the machine's speed cancels out of each
    difference, where it would not out of a difference of two medians."""
    pairs = zip(suite.times.get(config, []), suite.times.get("pytest", []), strict=True)
    return statistics.median([a - b for a, b in pairs] or [float("nan")])


def per_test_us(suite: Suite, config: str, fixed: Mapping[str, float]) -> float:
    """µs per test that ``config`` adds to plain pytest, the fixed cost of a run taken out."""
    extra = paired_extra(suite, config) - fixed.get(config, 0.0)
    return 1e6 * extra / max(suite.tests, 1)


def nox_peak(suite: Suite) -> int:
    peaks = [int(r.get("nox_peak_rss_bytes", 0)) for r in suite.runs.get("noxlib", [])]
    return max(peaks, default=0)


def post_seconds(phases: Mapping[str, float]) -> float:
    return sum(phases.get(name, 0.0) for name in POST_PHASES)


def versions(suites: Sequence[Suite]) -> str:
    """nox's version here, and the test tools' in the first suite's session venv."""
    found = [f"nox {metadata.version('nox')}"]
    if suites:
        python = suites[0].folder / ".nox" / "tests" / "bin" / "python"
        code = (
            "from importlib.metadata import version as v; "
            "print(', '.join(f'{n} {v(n)}' for n in ('pytest', 'pytest-xdist', 'noxlib')))"
        )
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        found.append(done.stdout.strip())
    return ", ".join(found)


def machine() -> str:
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def tables(suites: Sequence[Suite], configs: Sequence[str], rounds: int) -> list[str]:
    fixed: dict[str, float] = {}
    one = next((s for s in suites if s.tests == 1), None)
    if one is not None:
        fixed = {c: paired_extra(one, c) for c in configs if c != "pytest"}
    lines = [
        f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.2f}.",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {versions(suites)}.",
        f"Medians of {rounds} interleaved rounds (a suite whose plain run takes under "
        f"{ROUND_SECONDS:.0f} s repeated within each round, up to {MAX_REPEAT} times), wall time "
        "of the whole command, coverage off. Per-test costs are medians of differences "
        "within a round.",
        "",
        "| suite | tests | " + " | ".join(configs) + " |",
        "|---|---|" + "---|" * len(configs),
    ]
    for s in suites:
        cells = []
        for c in configs:
            ratio = s.median(c) / s.median("pytest")
            if c not in s.times:
                cells.append("-")
                continue
            cells.append(f"{s.median(c):.2f} s" + ("" if c == "pytest" else f" ({ratio:.2f}x)"))
        lines.append(f"| {s.name} | {s.tests:,} | " + " | ".join(cells) + " |")
    if "pytest -n 2" in configs and "tests-parallel" in configs:
        against = [
            f"{s.name} {s.median('tests-parallel') / s.median('pytest -n 2'):.2f}x"
            for s in suites
            if "tests-parallel" in s.times
        ]
        lines += ["", f"tests-parallel against plain `pytest -n 2`: {', '.join(against)}."]
    if fixed:
        costs = ", ".join(f"{c} {1000 * v:+.0f} ms" for c, v in fixed.items())
        lines += ["", f"Fixed cost per run (the 1-test suite, over plain pytest): {costs}."]
    lines += [
        "",
        "| suite | noxlib per test | plugin per test | nox-side post phases "
        "| of the noxlib run | merge | durations | report | nox peak memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in suites:
        phases = phase_medians(s.runs.get("noxlib", []))
        post = post_seconds(phases)
        noxlib_us = per_test_us(s, "noxlib", fixed) if "noxlib" in configs else float("nan")
        plugin_us = per_test_us(s, "plugin", fixed) if "plugin" in configs else float("nan")
        share = 100 * post / s.median("noxlib") if "noxlib" in configs else float("nan")
        lines.append(
            f"| {s.name} | {noxlib_us:.1f} µs | {plugin_us:.1f} µs | {1000 * post:.0f} ms "
            f"| {share:.1f} % | {1000 * phases.get('merge', 0):.0f} ms "
            f"| {1000 * phases.get('durations', 0):.0f} ms "
            f"| {1000 * phases.get('report', 0):.0f} ms | {nox_peak(s) / 2**20:.0f} MiB |"
        )
    return lines


def plot(suites: Sequence[Suite], configs: Sequence[str]) -> list[str]:
    """Mermaid charts of the per-test cost and the nox-side time against suite size."""
    sized = [s for s in suites if s.name.endswith("tiny tests") and s.tests >= PER_FILE]
    if not sized or "noxlib" not in configs:
        return []
    one = next((s for s in suites if s.tests == 1), None)
    fixed = {c: paired_extra(one, c) for c in configs} if one else {}
    axis = ", ".join(f'"{s.tests:,}"' for s in sized)
    noxlib_us = ", ".join(f"{per_test_us(s, 'noxlib', fixed):.1f}" for s in sized)
    post_ms = ", ".join(
        f"{1000 * post_seconds(phase_medians(s.runs.get('noxlib', []))):.0f}" for s in sized
    )
    lines = ["```mermaid", "xychart-beta", '    title "µs per test that noxlib adds"']
    lines += [f"    x-axis [{axis}]", '    y-axis "µs per test"', f"    line [{noxlib_us}]"]
    if "plugin" in configs:
        plugin_us = ", ".join(f"{per_test_us(s, 'plugin', fixed):.1f}" for s in sized)
        lines.append(f"    line [{plugin_us}]")
    lines += ["```", "", "```mermaid", "xychart-beta", '    title "nox-side post phases (ms)"']
    lines += [f"    x-axis [{axis}]", '    y-axis "ms"', f"    bar [{post_ms}]", "```"]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,1000,10000,100000,200000")
    parser.add_argument("--suites", default="packaging,attrs", help="real suites ('' for none)")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--work", type=Path, default=real_suites.CACHE / "overhead")
    parser.add_argument("--markdown", type=Path, help="write the tables and plot here")
    parser.add_argument(
        "--nox-python", default=sys.executable, help="the interpreter that runs nox and noxlib"
    )
    args = parser.parse_args(argv)
    # Users' Pythons cache bytecode; without it every process compiles pytest and nox again,
    # which is a fixed cost of its own (about 0.3 s a process here).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown or "pytest" not in configs:
        parser.error(f"--configs {args.configs!r}: needs 'pytest', and only {', '.join(CONFIGS)}")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    suites = [generated(size, args.work, args.nox_python) for size in sizes]
    names = [name for name in args.suites.split(",") if name]
    suites += [real(name, real_suites.CACHE / "suites", args.nox_python) for name in names]
    warm_up(suites, configs)
    interleaved(suites, configs, args.rounds)
    text = [*tables(suites, configs, args.rounds), "", *plot(suites, configs)]
    print("\n".join(text))
    if args.markdown:
        args.markdown.write_text("\n".join(text) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
