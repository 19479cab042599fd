"""Coverage around a run: erase old data, write the run's rc file, combine and report.

The nox side (``erase_data``, ``write_rcfile``) is plain Python: nox's own environment need not
have coverage. ``python -m noxlib.cover`` runs inside the session venv, where coverage is
installed, and drives coverage's API.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from noxlib.config import CoverageSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_FILE = ".coverage"


def erase_data(root: Path) -> int:
    """Delete coverage data files a previous run left in ``root``; return how many."""
    stale = [root / DATA_FILE, *root.glob(DATA_FILE + ".*")]
    removed = 0
    for path in stale:
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


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


def run_settings(root: Path, settings: CoverageSettings) -> dict[str, dict[str, object]]:
    """The project's ``[tool.coverage]`` with what a parallel-safe run needs laid on top.

    One data file per process (``parallel``), Python subprocesses measured (``patch``), data
    saved on SIGTERM, everything landing in ``root`` where the post phase combines it.
    """
    sections: dict[str, dict[str, object]] = {
        name: dict(values)
        for name, values in _project_coverage_table(root).items()
        if isinstance(values, dict)
    }
    run = sections.setdefault("run", {})
    patches = run.get("patch", [])
    patches = [patches] if isinstance(patches, str) else list(patches)  # type: ignore[call-overload]
    run.update(
        parallel=True,
        patch=sorted({*patches, "subprocess"}),
        sigterm=True,
        data_file=str(root / DATA_FILE),
        branch=settings.branch,
    )
    if settings.source:
        run["source"] = list(settings.source)
    return sections


def write_rcfile(root: Path, settings: CoverageSettings, run_dir: Path) -> Path:
    """Write the run's coverage rc file into ``run_dir`` and return its path."""
    path = run_dir / "coveragerc"
    path.write_text(render_rc(run_settings(root, settings)), encoding="utf-8")
    return path


def combine_and_report(rcfile: str, xml: str | None, html: str | None, fail_under: float) -> int:
    """Combine every process's data file into one, print the report, write XML/HTML.

    Returns 0, or 2 when the total is under ``fail_under``.
    """
    import coverage
    from coverage.exceptions import NoDataError

    cov = coverage.Coverage(config_file=rcfile)
    try:
        cov.combine()
    except NoDataError:
        print("noxlib: no coverage data to combine (no test process got far enough to save any)")
        return 0
    cov.save()
    try:
        total = cov.report(file=sys.stdout)
    except NoDataError:
        print("noxlib: combined coverage data holds no measured files (check coverage source)")
        return 0
    if xml:
        cov.xml_report(outfile=xml)
        print(f"noxlib: wrote coverage XML to {xml}")
    if html:
        cov.html_report(directory=html)
        print(f"noxlib: wrote coverage HTML to {html}/index.html")
    if fail_under and total < fail_under:
        print(
            f"noxlib: total coverage {total:.2f}% is under {fail_under:g}% set by "
            "tool.noxlib.coverage.fail-under in pyproject.toml; add tests or lower the setting."
        )
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m noxlib.cover")
    parser.add_argument("--rcfile", required=True)
    parser.add_argument("--xml")
    parser.add_argument("--html")
    parser.add_argument("--fail-under", type=float, default=0.0)
    args = parser.parse_args(argv)
    return combine_and_report(args.rcfile, args.xml, args.html, args.fail_under)


if __name__ == "__main__":
    sys.exit(main())
