"""Coverage after a run: combine, report, judge, publish; and the verdict the run reads.

``python -m noxlib.cover`` runs inside the session venv, where coverage is installed, and
drives coverage's API; `run_in_venv` starts it from the nox side and reads its `Verdict`. The
combined data file is published to the reports folder at the end. How a run measures (its rc
file, coverage's core) is measure.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from noxlib.files import make_temp_folder

# The combined data of a run, in its reports folder; not hidden, so CI artifact uploads keep it.
PUBLISHED_DATA = "coverage.db"
XML_REPORT = "coverage.xml"
HTML_REPORT = "htmlcov"


@dataclass(frozen=True)
class Publish:
    """Where the combined results go: the data file, and XML and HTML reports when asked."""

    data: Path | None = None
    xml: Path | None = None
    html: Path | None = None


@dataclass(frozen=True)
class Verdict:
    """What the coverage phase found: the total the threshold judges (None without data), the
    threshold and the setting it came from, and whether it was judged here (a CI shard holds
    part of the run's coverage: ``combine`` judges the whole)."""

    total: float | None
    threshold: float
    source: str
    judged: bool
    error: str = ""  # the combine itself failed (no data could be read, a crash)

    @property
    def failed(self) -> bool:
        if self.error:
            return True
        if not (self.judged and self.threshold):
            return False
        return self.total is None or self.total < self.threshold

    def sentence(self) -> str:
        if self.error:
            return self.error
        if self.total is None:
            return f"no coverage data to judge against {self.threshold:g}% ({self.source})"
        return f"coverage {self.total:.2f}% is under {self.threshold:g}% ({self.source})"

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Verdict | None:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def run_args(data: Path, published: Path, reports: Path | None) -> list[str]:
    """The arguments of ``python -m noxlib.cover`` for a run whose data is under ``data``: the
    combined data goes into the folder ``published``, and with ``reports`` (CI mode) the XML
    and HTML reports into that folder."""
    args = ["--data", str(data), "--publish-data", str(published / PUBLISHED_DATA)]
    if reports is not None:
        args += ["--xml", str(reports / XML_REPORT), "--html", str(reports / HTML_REPORT)]
    return args


def run_in_venv(
    python: str,
    env: Mapping[str, str],
    fail_under: float,
    rcfile: Path,
    args: Sequence[str],
    *,
    judge: bool = True,
) -> Verdict:
    """``python -m noxlib.cover`` in the session venv (where coverage is): combine, report,
    publish, and judge against the project's threshold when ``judge``. Returns its verdict."""
    verdict_file = rcfile.with_name("coverage-verdict.json")
    threshold = ["--fail-under", f"{fail_under:g}"]
    argv = [python, "-m", "noxlib.cover", "--rcfile", str(rcfile), *args, *threshold]
    argv += ["--verdict", str(verdict_file), *([] if judge else ["--no-judge"])]
    sys.stdout.flush()
    code = subprocess.run(argv, env=dict(env), check=False).returncode
    verdict = Verdict.read(verdict_file)
    if verdict is None:
        why = f"coverage could not be combined: python -m noxlib.cover exited with code {code}"
        return Verdict(None, fail_under, "", judged=True, error=why)
    return verdict


def combine_and_report(
    rcfile: str,
    data_paths: Sequence[str],
    publish: Publish,
    fail_under: float,
    *,
    other_roots: Sequence[str] = (),
    map_spec: Path | None = None,
    judge: bool = True,
    verdict_file: Path | None = None,
) -> int:
    """Combine the data files under ``data_paths`` (folders or files) into one, print the
    report, publish it, and judge it (unless ``judge`` is false: a CI shard's part of the
    coverage is judged by combine). Returns 0, or 2 when the total is under the threshold or
    there is no data to judge. ``verdict_file`` receives the `Verdict` as JSON.

    The threshold is ``fail_under`` (noxlib's setting) when above 0, else the project's own
    ``[tool.coverage.report] fail_under``. ``other_roots`` are project folders of other machines
    whose data is combined here (CI shards): their paths are mapped onto this one. ``map_spec``
    names a JSON file that asks for the ``--affected`` map from the combined data
    (`write_affected_map`).
    """
    import coverage
    from coverage.exceptions import NoDataError

    cov = coverage.Coverage(config_file=rcfile)
    threshold, source = _threshold(cov, fail_under, rcfile)
    if other_roots:
        here = str(Path.cwd()) + os.sep
        cov.set_option("paths", {"project": [here, *(r.rstrip("/") + os.sep for r in other_roots)]})
    try:
        cov.combine(list(data_paths), keep=True)
        cov.save()
        _publish_data(cov, publish.data)
        if map_spec is not None:
            try:
                write_affected_map(cov.get_data(), map_spec)
            except Exception as exc:  # the map is an extra: the run's coverage still counts
                print(f"noxlib: the --affected map was not written: {type(exc).__name__}: {exc}")
        total = cov.report(file=sys.stdout)
    except NoDataError as exc:
        if verdict_file:
            Verdict(None, threshold, source, judge).write(verdict_file)
        return _no_data(str(exc), threshold, source) if judge else 0
    _publish_reports(cov, publish)
    verdict = Verdict(round(total, 2), threshold, source, judge)
    if verdict_file:
        verdict.write(verdict_file)
    return _say(verdict)


def _say(verdict: Verdict) -> int:
    """Print what ``verdict`` means for the run; 2 when it fails it, else 0."""
    total, threshold, source = verdict.total or 0.0, verdict.threshold, verdict.source
    if not verdict.judged:
        if threshold:
            print(
                f"noxlib: coverage {total:.2f}% of this CI shard is not judged here: combine "
                f"judges the whole run against {threshold:g}% ({source})."
            )
        return 0
    if verdict.failed:
        print(
            f"noxlib: total coverage {total:.2f}% is under {threshold:g}% set by {source}; "
            "add tests or lower the setting."
        )
        return 2
    return 0


def write_affected_map(data: Any, spec_path: Path) -> None:
    """Write the ``--affected`` map from combined coverage ``data`` recorded with one context per
    test. ``spec_path`` is JSON from the session: ``out`` (the map file), ``root``, ``commit``,
    ``dirty`` ({path: hash}), ``tests_file`` (the node ids that ran to their end) and
    ``records`` (the folder of the pytest processes' Records)."""
    from noxlib import coveragemap, testrecords
    from noxlib.idfile import read_ids

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    tests = sorted(set(read_ids(Path(spec["tests_file"]))))
    contexts = {name: data.contexts_by_lineno(name) for name in data.measured_files()}
    root, commit, dirty = Path(spec["root"]), spec["commit"], spec["dirty"]
    records = testrecords.read_records(Path(spec["records"]))
    vouched = spec.get("vouched", ())
    cmap = coveragemap.build_map(
        contexts, tests, root, commit, dirty, records=records, vouched=vouched
    )
    cmap = coveragemap.with_untracked(cmap, root, records.written)
    coveragemap.write_map(Path(spec["out"]), cmap)
    lines = sum(len(f.by_line) for f in cmap.files.values())
    print(
        f"noxlib: wrote the --affected map of {len(tests)} tests over {lines} lines in "
        f"{len(cmap.files)} files to {spec['out']} (commit {spec['commit'][:7]})"
    )


def _threshold(cov: Any, fail_under: float, rcfile: str) -> tuple[float, str]:
    """The coverage threshold and the setting it came from."""
    if fail_under > 0:
        return fail_under, "tool.noxlib.coverage.fail-under in pyproject.toml"
    own = float(cov.get_option("report:fail_under") or 0.0)
    return own, "tool.coverage.report.fail_under in pyproject.toml"


def _no_data(why: str, threshold: float, source: str) -> int:
    print(f"noxlib: no coverage data to report ({why}).")
    if not threshold:
        return 0
    print(
        f"noxlib: coverage fails: {source} asks for {threshold:g}% and there is no data to "
        "judge. Check that the tests ran and that coverage's source setting names your package."
    )
    return 2


def _publish_data(cov: Any, path: Path | None) -> None:
    if path:
        shutil.copyfile(cov.get_data().data_filename(), _partial(path))
        os.replace(_partial(path), path)
        print(f"noxlib: combined coverage data in {path}")


def _publish_reports(cov: Any, publish: Publish) -> None:
    if publish.xml:
        cov.xml_report(outfile=_partial(publish.xml))
        os.replace(_partial(publish.xml), publish.xml)
        print(f"noxlib: wrote coverage XML to {publish.xml}")
    if publish.html:
        _replace_folder(publish.html, lambda folder: cov.html_report(directory=str(folder)))
        print(f"noxlib: wrote coverage HTML to {publish.html}/index.html")


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def forget_published(reports: Path) -> None:
    """Remove an earlier run's coverage outputs from ``reports``: a run that measured nothing
    must not leave another run's figures beside its own results."""
    for name in (PUBLISHED_DATA, XML_REPORT, HTML_REPORT):
        path = reports / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _replace_folder(folder: Path, fill: Any) -> None:
    """Fill a new folder and swap it in for ``folder``: readers never see a half-written one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = make_temp_folder(folder.parent, f".{folder.name}.")
    fill(fresh)
    old = folder.with_name(f".{folder.name}.old.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m noxlib.cover")
    parser.add_argument("--rcfile", required=True)
    parser.add_argument("--data", action="append", default=[], help="a data file or folder")
    parser.add_argument("--other-root", action="append", default=[])
    parser.add_argument("--publish-data", type=Path)
    parser.add_argument("--xml", type=Path)
    parser.add_argument("--html", type=Path)
    parser.add_argument("--fail-under", type=float, default=0.0)
    parser.add_argument("--affected-map", type=Path, help="JSON spec of the map to write")
    parser.add_argument("--verdict", type=Path, help="where the verdict goes, as JSON")
    parser.add_argument("--no-judge", action="store_true", help="report, but judge nothing")
    args = parser.parse_args(argv)
    publish = Publish(args.publish_data, args.xml, args.html)
    return combine_and_report(
        args.rcfile,
        args.data,
        publish,
        args.fail_under,
        other_roots=args.other_root,
        map_spec=args.affected_map,
        judge=not args.no_judge,
        verdict_file=args.verdict,
    )


if __name__ == "__main__":
    sys.exit(main())
