"""CI runs exactly what developers run: only registered nox sessions, never pytest directly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CI_FILES = sorted(
    [*ROOT.glob("ci/*.yml"), *ROOT.glob(".github/workflows/*.yml"), ROOT / ".ci" / "run"]
)
NOX_SESSION = re.compile(r"\bnox\b[^\n]*?(?:-s|--session|--sessions)\s+([\w.-]+)")
# A matrix job's Python in a session name: GitHub's expression, GitLab's variable.
MATRIX_PYTHON = re.compile(r"\$\{\{ matrix\.python \}\}|\$PYTHON\b")
# A version's own session: ci-3.12 beside ci (which runs on nox's Python).
PYTHON_SUFFIX = re.compile(r"-(?:pypy)?\d+\.\d+t?$")
PYTEST_DIRECT = re.compile(r"(?:^|[\s;&|(])(?:python3?\s+-m\s+)?pytest\b(?![-\w])", re.M)


def commands(path: Path) -> str:
    # Comments may talk about pytest; only what runs counts.
    return "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())


def config_pythons() -> tuple[str, ...]:
    from noxlib.config import load_config

    return load_config(ROOT).python


def session_names(text: str) -> list[str]:
    """The sessions ``text`` runs; a matrix job's ``ci-${{ matrix.python }}`` counts as the
    session of each Python of the config."""
    names = []
    for name in NOX_SESSION.findall(MATRIX_PYTHON.sub("MATRIXPYTHON", text)):
        if "MATRIXPYTHON" in name:
            names += [name.replace("MATRIXPYTHON", v) for v in config_pythons()]
        else:
            names.append(name)
    return names


@pytest.fixture(scope="module")
def registered_sessions() -> set[str]:
    # `nox -l` marks every registered session with "* " (default) or "- " (not default).
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    names = {
        line[2:].split(" -> ")[0].split(" [")[0].strip()  # "ci-3.12 [ci-matrix]": its tag
        for line in listed.stdout.splitlines()
        if line.startswith(("* ", "- "))
    }
    return names | {PYTHON_SUFFIX.sub("", name) for name in names}


def test_the_ci_files_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in CI_FILES}
    assert {"ci/github-actions.yml", "ci/gitlab-ci.yml", ".ci/run"} <= names


def test_github_workflow_is_identical_to_the_one_in_ci() -> None:
    workflow = ROOT / ".github" / "workflows" / "tests.yml"
    assert workflow.read_text() == (ROOT / "ci" / "github-actions.yml").read_text()


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_ci_file_runs_only_registered_sessions(path: Path, registered_sessions: set[str]) -> None:
    text = commands(path)
    named = session_names(text)
    assert named, f"{path} runs no nox session"
    unknown = sorted(set(named) - registered_sessions)
    assert not unknown, f"{path} names sessions the noxfile does not register: {unknown}"
    assert not PYTEST_DIRECT.search(text), f"{path} runs pytest directly; use a nox session"


def test_the_checks_catch_what_they_guard(registered_sessions: set[str]) -> None:
    # The patterns themselves must find a direct pytest call and an unknown session.
    assert PYTEST_DIRECT.search("  - python -m pytest tests -n 4")
    assert PYTEST_DIRECT.search("run: pytest")
    assert not PYTEST_DIRECT.search("pip install pytest-xdist")
    assert NOX_SESSION.findall("python -m nox -s deploy") == ["deploy"]
    assert "deploy" not in registered_sessions
    assert {"tests", "tests-parallel", "ci", "reap", "combine"} <= registered_sessions
    assert {"ci-3.10", "ci-3.14", "tests-parallel-3.12"} <= registered_sessions
    assert "ci-3.9" not in registered_sessions
    assert session_names("run: nox -s ci-${{ matrix.python }}") == [
        f"ci-{v}" for v in config_pythons()
    ]


MATRIX = re.compile(r"^\s+(?:python|- PYTHON): \[([^\]]*)\]$", re.M)
SETUP_PYTHON = re.compile(r'python-version: "(\d+\.\d+)"')


def test_the_ci_matrix_runs_every_python_of_the_config() -> None:
    # ci-X.Y for each version of [tool.noxlib] python: the main version's sharded job, and the
    # matrix job for the others; no version left out, none run that the config lacks.
    for name in ("ci/github-actions.yml", "ci/gitlab-ci.yml"):
        text = commands(ROOT / name)
        (matrix,) = MATRIX.findall(text)
        others = [v.strip().strip('"') for v in matrix.split(",")]
        main = {n.removeprefix("ci-") for n in session_names(text) if PYTHON_SUFFIX.search(n)}
        assert sorted(main | set(others), key=lambda v: tuple(map(int, v.split(".")))) == list(
            config_pythons()
        ), name


SHARD_MATRIX = re.compile(r"^\s+shard: \[([\d, ]+)\]$", re.M)
SHARD_SETTING = re.compile(r'NOXLIB_SHARD: "\$\{\{ matrix\.shard \}\}/(\d+)"')


def github_shards(text: str) -> tuple[list[int], list[int]]:
    """The sharded job's matrix, and the N of every NOXLIB_SHARD that uses it."""
    matrices = [[int(k) for k in m.split(",")] for m in SHARD_MATRIX.findall(text)]
    return (matrices[0] if len(matrices) == 1 else []), [
        int(n) for n in SHARD_SETTING.findall(text)
    ]


def test_the_sharded_job_matrix_matches_the_shard_count() -> None:
    text = commands(ROOT / "ci" / "github-actions.yml")
    matrix, totals = github_shards(text)
    assert matrix, "ci/github-actions.yml has no single shard matrix"
    assert totals, "the sharded job sets no NOXLIB_SHARD from its matrix"
    assert all(n == len(matrix) for n in totals), f"matrix {matrix} but NOXLIB_SHARD N {totals}"
    assert matrix == list(range(1, len(matrix) + 1))
    assert "nox -s combine -- --store-durations shards/reports-shard-*" in text
    assert "path: .test_durations" in text
    gitlab = commands(ROOT / "ci" / "gitlab-ci.yml")
    assert "parallel:" in gitlab
    assert "nox -s combine -- --store-durations shards/*" in gitlab


def test_the_shard_check_catches_a_mismatch() -> None:
    text = (
        "matrix:\n        shard: [1, 2, 3, 4]\n"
        '    env:\n      NOXLIB_SHARD: "${{ matrix.shard }}/3"\n'
    )
    matrix, totals = github_shards(text)
    assert len(matrix) == 4
    assert totals == [3]


def test_ci_run_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```(?:bash|sh)?\n# run this project's tests\n(.+)\n```", readme)
    assert match, "README lacks the '# run this project's tests' block"
    assert match.group(1) in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_tpch_report_lists_every_query() -> None:
    # The timing report must give each query's time: the group has to stay within
    # report-all-tests, or the report falls back to the ten slowest tests.
    from noxlib.config import load_config

    collect = ["--collect-only", "-q", "-p", "no:cacheprovider", "tests/tpch"]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", *collect],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    tests = [line for line in collected.stdout.splitlines() if "::" in line]
    assert sum("test_query[q" in t for t in tests) == 22
    assert len(tests) <= load_config(ROOT).report_all_tests, (
        f"tests/tpch has {len(tests)} tests; raise report-all-tests in pyproject.toml"
    )


HISTORY_RESTORE = re.compile(
    r"uses: actions/cache/restore@v\d+\n\s+with:\n\s+path: reports/ci_timings\.jsonl\n"
    r"\s+key: (run-history-[\w-]+)\$\{\{ github\.ref_name \}\}-.*\n"
    r"\s+restore-keys: \|\n\s+\1\$\{\{ github\.ref_name \}\}-\n"
    r"\s+\1\$\{\{ github\.event\.repository\.default_branch \}\}-\n"
)
HISTORY_SAVE = re.compile(
    r"if: always\(\)\n\s+uses: actions/cache/save@v\d+\n\s+with:\n"
    r"\s+path: reports/ci_timings\.jsonl\n\s+key: (run-history-[\w-]+)\$\{\{ github\.ref_name"
)


def test_the_run_history_survives_between_ci_runs() -> None:
    # Flakiness rate, rollback and trend read reports/ci_timings.jsonl: each history a job
    # saves (combine for the sharded tests, tpch for its own) is restored before its runs,
    # from the branch's cache or else the default branch's.
    text = (ROOT / "ci" / "github-actions.yml").read_text()
    restored = set(HISTORY_RESTORE.findall(text))
    saved = set(HISTORY_SAVE.findall(text))
    assert saved == {"run-history-tests-", "run-history-tpch-"}, saved
    assert saved <= restored
    assert len(HISTORY_RESTORE.findall(text)) == 3  # the shard jobs, combine, tpch
    gitlab = (ROOT / "ci" / "gitlab-ci.yml").read_text()
    assert gitlab.count("- run-history-tests-$CI_DEFAULT_BRANCH") == 2
    assert gitlab.count("- run-history-tpch-$CI_DEFAULT_BRANCH") == 1
    assert gitlab.count("- reports/ci_timings.jsonl") == 3


def _job(text: str, name: str) -> str:
    """The lines of the GitHub job ``name``: from its key to the next job's."""
    start = text.index(f"\n  {name}:\n")
    following = re.search(r"\n  [\w-]+:\n", text[start + 1 :])
    return text[start : start + 1 + following.start()] if following else text[start:]


def test_the_affected_map_combine_saves_is_the_one_the_shards_restore() -> None:
    # Shadow mode needs the last map and the history back to its commit; combine merges the
    # shards' maps into .test_affected, which the next run's shards must get back.
    text = (ROOT / "ci" / "github-actions.yml").read_text()
    shards, combine = _job(text, "tests"), _job(text, "combine")
    assert "fetch-depth: 0" in shards
    assert "path: .test_affected\n          key: affected-map-${{ github.ref_name }}-" in combine
    assert "hashFiles('.test_affected')" in combine
    for prefix in ("${{ github.ref_name }}", "${{ github.event.repository.default_branch }}"):
        assert f"            affected-map-{prefix}-\n" in shards
    assert shards.index("Restore the --affected map") < shards.index("nox -s ci-3.11")
