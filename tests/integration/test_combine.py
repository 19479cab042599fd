"""``combine`` under real nox: shards run in checkouts at different paths combine, coverage is
judged once on the whole run, and shards of different code are refused.

Each CI machine is a copy of one small git project in a folder of its own (CI runners check
out at paths of their own), running ``nox -s ci`` with ``NOXLIB_SHARD=K/3``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import nox_env, run_nox, write_project

PYPROJECT = """
[tool.noxlib]
install = []
triage = false

[tool.noxlib.groups.unit]
paths = ["tests"]

[tool.noxlib.coverage]
source = ["pkg"]
branch = false
fail-under = FAIL_UNDER

[tool.pytest.ini_options]
pythonpath = ["."]
"""

FILES = {
    # 8 statements: each shard runs the 4 definitions and one body (62.5 %); together
    # they run 7 of 8 (87.5 %); d's body never runs.
    "pkg/__init__.py": "",
    "pkg/mod.py": """
        def a():
            return 1
        def b():
            return 2
        def c():
            return 3
        def d():
            return 4
    """,
    "tests/test_a.py": """
        from pathlib import Path

        import pytest

        from pkg.mod import a

        # An id that holds the checkout's folder, as some real suites' parameters do.
        @pytest.mark.parametrize("where", [str(Path(__file__).parent)])
        def test_a(where):
            assert a() == 1
    """,
    "tests/test_b.py": "from pkg.mod import b\n\n\ndef test_b():\n    assert b() == 2\n",
    "tests/test_c.py": "from pkg.mod import c\n\n\ndef test_c():\n    assert c() == 3\n",
    ".gitignore": ".nox/\nreports/\n.noxlib/\n",
}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def make_checkout(base: Path, fail_under: int) -> Path:
    root = write_project(base, PYPROJECT.replace("FAIL_UNDER", str(fail_under)), FILES)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return root


def run_matrix(tmp: Path, fail_under: int) -> tuple[Path, list[Path]]:
    """Three shards, each in a checkout at a path of its own, and a fourth checkout that
    combines; returns (the combining checkout, the shards' reports folders)."""
    origin = make_checkout(tmp / "origin", fail_under)
    folders = []
    for k, where in enumerate(("a/proj", "b/deeper/proj", "c/proj3"), 1):
        checkout = Path(shutil.copytree(origin, tmp / where, symlinks=True))
        result = run_nox(checkout, "-s", "ci", env=nox_env(NOXLIB_SHARD=f"{k}/3"))
        assert result.returncode == 0, result.stdout  # a shard's part is not judged alone
        assert "is not judged here" in result.stdout
        folders.append(checkout / "reports")
    return origin, folders


@pytest.fixture(scope="module")
def passing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    return run_matrix(tmp_path_factory.mktemp("passing"), 70)


def test_shards_at_three_paths_combine_and_coverage_is_judged_on_the_whole(
    passing: tuple[Path, list[Path]],
) -> None:
    origin, folders = passing
    result = run_nox(origin, "-s", "combine", "--", *map(str, folders))
    assert result.returncode == 0, result.stdout
    assert "every collected test ran once (3 tests)" in result.stdout
    report = (origin / "reports" / "ci_timings.md").read_text()
    assert "— passed" in report
    assert "87.5" in report, report  # the figure combine judged


def test_coverage_under_the_threshold_fails_combine_and_says_the_figure(
    tmp_path: Path,
) -> None:
    origin, folders = run_matrix(tmp_path, 90)
    result = run_nox(origin, "-s", "combine", "--", *map(str, folders))
    assert result.returncode != 0, result.stdout
    report = (origin / "reports" / "ci_timings.md").read_text()
    assert "— failed (coverage 87.50% is under 90%" in report
    line = json.loads((origin / "reports" / "ci_timings.jsonl").read_text().splitlines()[-1])
    assert line["status"].startswith("failed (coverage 87.50% is under 90%")


def test_a_shard_of_another_commit_is_refused(
    passing: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    origin, folders = passing
    later = Path(shutil.copytree(origin, tmp_path / "later", symlinks=True))
    shutil.rmtree(later / "reports", ignore_errors=True)
    (later / "tests" / "test_b.py").write_text("def test_b():\n    assert False\n")
    git(later, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    result = run_nox(later, "-s", "ci", env=nox_env(NOXLIB_SHARD="2/3"))
    assert (later / "reports" / "run.json").is_file(), result.stdout
    mixed = [str(folders[0]), str(later / "reports"), str(folders[2])]
    combined = run_nox(origin, "-s", "combine", "--", *mixed)
    assert combined.returncode != 0
    assert "their code (commit and uncommitted files) differs" in combined.stdout
    assert "run every shard from one commit" in combined.stdout


def test_a_malformed_run_description_is_named_without_a_traceback(
    passing: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    origin, folders = passing
    broken = Path(shutil.copytree(folders[1], tmp_path / "broken"))
    (broken / "run.json").write_text(json.dumps({"session": "ci", "shard": "2/3"}))
    result = run_nox(origin, "-s", "combine", "--", str(folders[0]), str(broken), str(folders[2]))
    assert result.returncode != 0
    assert f"{broken / 'run.json'} is not a noxlib run description" in result.stdout
    assert "Traceback" not in result.stdout
    missing = run_nox(origin, "-s", "combine", "--", str(tmp_path / "nowhere"))
    assert "does not exist or is no folder" in missing.stdout


def test_ctrl_c_during_combine_leaves_the_reports_folder_as_it_was(
    passing: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    origin, folders = passing
    project = Path(shutil.copytree(origin, tmp_path / "interrupted", symlinks=True))
    reports = project / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir()
    before = {"junit.xml": "<old/>\n", "ci_timings.jsonl": '{"old": 1}\n'}
    for name, text in before.items():
        (reports / name).write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", "combine", "--", *map(str, folders)],
        cwd=project,
        env=nox_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            # The merge is done; coverage (an install, then coverage's combine) takes seconds.
            if "every collected test ran once" in line:
                os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
                break
        rest, _ = proc.communicate(timeout=120)
        output.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(output)
    assert proc.returncode != 0, text
    assert "the reports folder is left as it was" in text
    assert {p.name: p.read_text() for p in reports.iterdir()} == before
    assert not [p for p in project.iterdir() if p.name.startswith(".reports.")]
