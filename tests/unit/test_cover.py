"""The run's coverage rc file, and the coverage gate judged on the combined data."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest
from coverage import CoverageData

from noxlib.config import CoverageSettings
from noxlib.cover import Publish, combine_and_report
from noxlib.measure import NOXLIB_PACKAGE, choose_core, core_for_run, venv_python, write_rcfile


def test_rcfile_merges_project_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.coverage.run]\nomit = ["*/gen/*"]\npatch = ["_exit"]\n'
        '[tool.coverage.report]\nexclude_also = ["if DEBUG:"]\n'
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rc = write_rcfile(tmp_path, CoverageSettings(source=("pkg",)), run_dir)
    parser = configparser.ConfigParser()
    parser.read(rc)
    run = parser["run"]
    assert run["parallel"] == "true"
    assert run["sigterm"] == "true"
    # In the run's own folder: a second run in the same checkout cannot erase or combine it.
    assert run["data_file"] == str(run_dir / "coverage" / ".coverage")
    assert run["patch"].split() == ["_exit", "subprocess"]
    assert run["omit"].split() == ["*/gen/*", str(NOXLIB_PACKAGE / "*")]
    assert run["source"].split() == ["pkg"]
    assert parser["report"]["exclude_also"].strip() == "if DEBUG:"


def _project(tmp_path: Path, pyproject: str = "") -> tuple[Path, Path]:
    """A project with a 4-line module of which the data file says 2 lines ran (50 %)."""
    (tmp_path / "pyproject.toml").write_text(pyproject)
    module = tmp_path / "mod.py"
    module.write_text("a = 1\nb = 2\nif a:\n    c = 3\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rc = write_rcfile(tmp_path, CoverageSettings(branch=False), run_dir)
    data = CoverageData(basename=str(run_dir / "coverage" / ".coverage"), suffix="w1")
    data.add_lines({str(module): [1, 2]})
    data.write()
    return rc, run_dir / "coverage"


def _judge(
    rc: Path, data: Path, fail_under: float, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> int:
    monkeypatch.chdir(tmp_path)
    return combine_and_report(str(rc), [str(data)], Publish(), fail_under)


def test_noxlib_threshold_fails_a_low_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, data = _project(tmp_path)
    assert _judge(rc, data, 40, monkeypatch, tmp_path) == 0
    assert _judge(rc, data, 60, monkeypatch, tmp_path) == 2
    assert "under 60% set by tool.noxlib.coverage.fail-under" in capsys.readouterr().out


def test_the_projects_own_fail_under_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, data = _project(tmp_path, "[tool.coverage.report]\nfail_under = 90\n")
    assert _judge(rc, data, 0, monkeypatch, tmp_path) == 2
    assert "under 90% set by tool.coverage.report.fail_under" in capsys.readouterr().out


def test_no_data_with_a_threshold_fails_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _ = _project(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _judge(rc, empty, 0, monkeypatch, tmp_path) == 0  # nothing asked, nothing judged
    assert _judge(rc, empty, 80, monkeypatch, tmp_path) == 2
    out = capsys.readouterr().out
    assert "asks for 80% and there is no data to judge" in out


def test_published_files_appear_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, data = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    (out / "htmlcov").mkdir()
    (out / "htmlcov" / "stale.html").write_text("old")
    publish = Publish(out / "coverage.db", out / "coverage.xml", out / "htmlcov")
    assert combine_and_report(str(rc), [str(data)], publish, 0) == 0
    assert (out / "coverage.xml").read_text().startswith("<?xml")
    assert (out / "htmlcov" / "index.html").is_file()
    assert not (out / "htmlcov" / "stale.html").exists()  # swapped, not written over
    published = CoverageData(basename=str(out / "coverage.db"))
    published.read()
    assert published.measured_files() == {str(tmp_path / "mod.py")}
    assert sorted(p.name for p in out.iterdir()) == ["coverage.db", "coverage.xml", "htmlcov"]


@pytest.mark.parametrize(
    ("python", "run", "core", "why"),
    [
        ((3, 11), {"branch": True}, None, "Python 3.11 has no sys.monitoring (3.12 and later)"),
        ((3, 11), {"branch": False}, None, "Python 3.11 has no sys.monitoring"),
        (
            (3, 12),
            {"branch": False},
            "sysmon",
            "Python 3.12 has sys.monitoring, which measures lines",
        ),
        (
            (3, 13),
            {"branch": True},
            None,
            "sys.monitoring measures branches only from Python 3.14, this is 3.13; "
            "[tool.noxlib.coverage] branch = false would use sysmon here",
        ),
        (
            (3, 14),
            {"branch": True},
            "sysmon",
            "Python 3.14 has sys.monitoring, which measures branches",
        ),
        (
            (3, 15),
            {"branch": True, "plugins": ["x"]},
            None,
            "coverage plugins and dynamic contexts",
        ),
        ((3, 14), {"dynamic_context": "test_function"}, None, "coverage plugins and dynamic"),
        ((3, 14), {"concurrency": ["thread", "gevent"]}, None, "concurrency = gevent needs"),
        ((3, 14), {"concurrency": "eventlet"}, None, "concurrency = eventlet needs"),
        ((3, 14), {"concurrency": ["thread", "multiprocessing"]}, "sysmon", "has sys.monitoring"),
        ((3, 14), {"timid": True}, None, "timid asks for the Python tracer"),
        (None, {}, None, "the session's Python version is unknown"),
        ((3, 11), {"core": "pytrace"}, "pytrace", "set by [tool.coverage.run] core"),
        ((3, 14), {"core": "ctrace", "branch": True}, "ctrace", "set by [tool.coverage.run] core"),
    ],
)
def test_the_fastest_core_that_measures_the_run(
    python: tuple[int, int] | None, run: dict[str, object], core: str | None, why: str
) -> None:
    choice = choose_core(python, run)
    assert choice.core == core
    assert why in choice.why


def test_coverage_core_in_the_environment_wins_as_coverage_lets_it() -> None:
    choice = choose_core((3, 11), {"core": "ctrace"}, environ_core="sysmon")
    assert (choice.core, choice.why) == ("sysmon", "set by the environment variable COVERAGE_CORE")
    assert choice.line() == "coverage core sysmon: set by the environment variable COVERAGE_CORE"
    assert choose_core((3, 11), {}).line().startswith("coverage core default (ctrace): Python")


def _rc_run(
    tmp_path: Path, python: tuple[int, int] | None, branch: bool, project: str = ""
) -> configparser.SectionProxy:
    (tmp_path / "pyproject.toml").write_text(project)
    run_dir = tmp_path / f"run-{python}-{branch}"
    run_dir.mkdir()
    parser = configparser.ConfigParser()
    parser.read(write_rcfile(tmp_path, CoverageSettings(branch=branch), run_dir, python))
    return parser["run"]


def test_the_rcfile_asks_for_sysmon_only_where_it_measures_the_run(tmp_path: Path) -> None:
    assert _rc_run(tmp_path, (3, 12), branch=False)["core"] == "sysmon"
    assert _rc_run(tmp_path, (3, 14), branch=True)["core"] == "sysmon"
    # Below 3.14 sysmon cannot measure branches: coverage would warn in every process and fall
    # back, so noxlib leaves the core to coverage's default (ctrace) and says why.
    assert "core" not in _rc_run(tmp_path, (3, 13), branch=True)
    assert "core" not in _rc_run(tmp_path, (3, 11), branch=False)
    assert "core" not in _rc_run(tmp_path, None, branch=False)


def test_the_projects_own_core_is_kept(tmp_path: Path) -> None:
    run = _rc_run(tmp_path, (3, 14), branch=True, project='[tool.coverage.run]\ncore = "ctrace"\n')
    assert run["core"] == "ctrace"


def test_core_for_run_reads_the_project_and_noxlibs_branch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COVERAGE_CORE", raising=False)
    (tmp_path / "pyproject.toml").write_text("[tool.coverage.run]\nbranch = false\n")
    # noxlib's branch setting is laid over the project's: branch = true by default.
    assert core_for_run(tmp_path, CoverageSettings(), (3, 13)).core is None
    assert core_for_run(tmp_path, CoverageSettings(branch=False), (3, 13)).core == "sysmon"
    monkeypatch.setenv("COVERAGE_CORE", "ctrace")
    assert core_for_run(tmp_path, CoverageSettings(branch=False), (3, 13)).core == "ctrace"


@pytest.mark.parametrize(
    ("cfg", "version"),
    [
        ("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.1\n", (3, 12)),
        ("home = /x\nimplementation = CPython\nversion_info = 3.13.0.final.0\n", (3, 13)),
        ("home = /x\nuv = 0.9.1\nversion_info = 3.14.2\n", (3, 14)),
        ("home = /x\nversion_info = garbage\n", None),
    ],
)
def test_the_venvs_python_is_read_from_pyvenv_cfg(
    tmp_path: Path, cfg: str, version: tuple[int, int] | None
) -> None:
    (tmp_path / "pyvenv.cfg").write_text(cfg)
    assert venv_python(tmp_path) == version


def test_a_venv_without_pyvenv_cfg_has_no_known_python(tmp_path: Path) -> None:
    assert venv_python(tmp_path) is None


def test_the_affected_maps_per_test_contexts_keep_the_tracer(tmp_path: Path) -> None:
    # sys.monitoring reports a line once: every later test that ran it would miss the map.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = CoverageSettings(branch=False)
    parser = configparser.ConfigParser()
    parser.read(write_rcfile(tmp_path, settings, run_dir, (3, 14), test_contexts=True))
    assert "core" not in parser["run"]
    choice = core_for_run(tmp_path, settings, (3, 14), test_contexts=True)
    assert choice.core is None
    assert "--affected map switches coverage's context per test" in choice.why


def _measured_files(project: Path) -> list[str]:
    """Run a script that imports the project's module and calls into noxlib, under the rc file
    noxlib writes for ``project``; the files coverage measured."""
    run_dir = project / "run"
    run_dir.mkdir()
    (project / "mod.py").write_text("def f():\n    return 1\n")
    (project / "main.py").write_text(
        "import mod\nfrom noxlib import words\nmod.f()\nwords.plural(2, 'test')\n"
    )
    rc = write_rcfile(project, CoverageSettings(branch=False), run_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    command = [sys.executable, "-m", "coverage", "run", "--rcfile", str(rc), "main.py"]
    subprocess.run(command, cwd=project, env=env, check=True)
    combined = CoverageData(basename=str(run_dir / "coverage" / ".coverage"))
    subprocess.run(
        [sys.executable, "-m", "coverage", "combine", "--rcfile", str(rc), "-q"],
        cwd=project,
        env=env,
        check=True,
    )
    combined.read()
    return sorted(Path(f).name for f in combined.measured_files())


def test_noxlib_outside_the_project_is_not_measured_as_its_code(tmp_path: Path) -> None:
    # An editable noxlib lies outside site-packages: measured, its plugin would count against
    # the project's fail-under. This checkout's tests import it from src/, outside tmp_path.
    assert sorted(_measured_files(tmp_path)) == ["main.py", "mod.py"]
