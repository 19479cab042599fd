"""The run's coverage rc file, and the coverage gate judged on the combined data."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from coverage import CoverageData

from noxlib.config import CoverageSettings
from noxlib.cover import Publish, combine_and_report, write_rcfile


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
    assert run["omit"].split() == ["*/gen/*"]
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
