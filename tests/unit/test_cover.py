"""The run's coverage rc file keeps the project's settings and adds parallel-safe ones."""

from __future__ import annotations

import configparser
from pathlib import Path

from noxlib.config import CoverageSettings
from noxlib.cover import erase_data, write_rcfile


def test_rcfile_merges_project_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.coverage.run]\nomit = ["*/gen/*"]\npatch = ["_exit"]\n'
        '[tool.coverage.report]\nexclude_also = ["if DEBUG:"]\n'
    )
    rc = write_rcfile(tmp_path, CoverageSettings(source=("pkg",)), tmp_path)
    parser = configparser.ConfigParser()
    parser.read(rc)
    run = parser["run"]
    assert run["parallel"] == "true"
    assert run["sigterm"] == "true"
    assert run["data_file"] == str(tmp_path / ".coverage")
    assert run["patch"].split() == ["_exit", "subprocess"]
    assert run["omit"].split() == ["*/gen/*"]
    assert run["source"].split() == ["pkg"]
    assert parser["report"]["exclude_also"].strip() == "if DEBUG:"


def test_erase_removes_only_coverage_data(tmp_path: Path) -> None:
    for name in (".coverage", ".coverage.host.1.abc", ".coveragerc", "keep.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / ".coveragerc").unlink()
    assert erase_data(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
