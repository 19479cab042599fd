"""``combine``: the reports folders of a CI matrix's shards merged into one run.

The same merge as a run's own (merge.py, books.py): each shard is a `books.Source`, the books
balance across shards (a test in two shards is a conflict, a test of no shard's results is
not-run), and coverage is judged once, on the whole run's data. Everything is built in a
staging folder beside the reports folder and moved into place only once it is complete: an
interrupted combine leaves the reports folder as it was and writes no history line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from noxlib import cover, coveragemap, measure, reports, triage
from noxlib.books import Books, balance
from noxlib.config import Config
from noxlib.durations import DURATIONS_LOCK
from noxlib.errors import UsageError
from noxlib.files import make_temp_folder
from noxlib.findings import TIMINGS_FILE, Settings, write_report
from noxlib.history import FLAKY_FILE
from noxlib.host import COVERAGE_REQUIREMENT, Host, RunFailed
from noxlib.merge import JUNIT_FILE, shard_source, update_durations, write_merged
from noxlib.outcomes import RunStatus
from noxlib.pipeline import Pipeline
from noxlib.reaping.runs import ensure_state_dir
from noxlib.runinfo import PartRow, RunInfo, check_shard_set, read_run_info

# What combine keeps of the reports folder it replaces: the history the new run appends to.
_KEPT = (TIMINGS_FILE, FLAKY_FILE)


STORE_DURATIONS = "--store-durations"


def combine_arguments(
    arguments: Sequence[str | Path],
) -> tuple[list[tuple[Path, RunInfo]], bool]:
    """(each reports folder with its run.json, whether ``--store-durations`` was given) of
    combine's arguments; UsageError for any other option, or for a folder that is no noxlib
    reports folder."""
    words = [str(argument) for argument in arguments]
    options = [word for word in words if word.startswith("--")]
    unknown = [word for word in options if word != STORE_DURATIONS]
    if unknown:
        raise UsageError(
            f"Unknown option {unknown[0]!r} (after --) for combine: it takes the shards' reports "
            f"folders and {STORE_DURATIONS}, e.g. nox -s combine -- shards/*."
        )
    folders = [Path(word) for word in words if not word.startswith("--")]
    return [(folder, read_run_info(folder)) for folder in folders], STORE_DURATIONS in options


def combine(host: Host, config: Config, words: Sequence[str], self_install: Sequence[str]) -> None:
    """Merge the reports folders named in ``words`` (combine's arguments) of one matrix's
    shards into ``config``'s reports folder. Raises UsageError for a set that does not belong
    together, RunFailed for a merged run that did not pass."""
    infos, store = combine_arguments(words)
    total = check_shard_set(infos)
    host.log(f"noxlib: combining {total} shards: {', '.join(str(f) for f, _ in infos)}")
    Combine(host, config, infos, self_install, store_durations=store).execute()


class Combine:
    """The phases of one combine, building in ``stage`` and publishing at the end."""

    def __init__(
        self,
        host: Host,
        config: Config,
        infos: Sequence[tuple[Path, RunInfo]],
        self_install: Sequence[str],
        *,
        store_durations: bool = False,
    ) -> None:
        self.host, self.config, self.self_install = host, config, tuple(self_install)
        self.store_durations = store_durations
        self.infos = sorted(infos, key=lambda pair: pair[1].index)
        self.pipeline = Pipeline(log=host.log)
        reports_dir = config.reports_path
        reports_dir.parent.mkdir(parents=True, exist_ok=True)
        self.stage = make_temp_folder(reports_dir.parent, f".{reports_dir.name}.")
        self.books: Books | None = None
        self.coverage: cover.Verdict | None = None
        self.reasons: list[str] = []
        self.complete = False
        self.merged_map: coveragemap.CoverageMap | None = None

    def execute(self) -> None:
        try:
            self.pipeline.execute(
                (
                    ("merge", self.merge),
                    ("merge-maps", self.merge_maps),
                    ("combine-coverage", self.combine_coverage),
                    ("report", self.report),
                ),
                post=(("publish", self.publish),),
            )
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
        if self.reasons:
            raise RunFailed("; ".join(self.reasons))

    def merge(self) -> None:
        self.books = balance(shard_source(folder, info) for folder, info in self.infos)
        junit = [folder / JUNIT_FILE for folder, _ in self.infos]
        write_merged(self.books, self.books.expected, self.stage, junit)
        self.host.log(f"noxlib: {self.books.line()}")
        if not self.books.balanced:
            self.reasons.append("the books do not balance")
        failed = [f"shard {info.shard}" for _, info in self.infos if not _passed(info.status)]
        if failed:
            self.reasons.append(f"{', '.join(failed)} did not pass")

    def merge_maps(self) -> None:
        """The shards' --affected maps as one, staged; published as the project's map. Every
        shard must have one: a map missing a shard's tests would run them, but say less."""
        found = [(folder / coveragemap.SHARD_MAP_FILE, info) for folder, info in self.infos]
        paths = [path for path, _ in found]
        missing = [str(info.shard) for path, info in found if not path.is_file()]
        if len(missing) == len(paths):
            return
        if missing:
            self.host.log(f"noxlib: no merged --affected map: shard {', '.join(missing)} has none")
            return
        try:
            maps = [m for path in paths if (m := coveragemap.read_map(path)) is not None]
        except (UsageError, coveragemap.OldMap) as exc:
            self.host.log(f"noxlib: no merged --affected map: {exc}")
            return
        merged = coveragemap.merge_maps(maps)
        coveragemap.write_map(self.stage / coveragemap.SHARD_MAP_FILE, merged)
        self.merged_map = merged
        self.host.log(
            f"noxlib: merged the --affected maps of {len(maps)} shards: {len(merged.tests)} tests"
        )

    def combine_coverage(self) -> None:
        data = [
            path for folder, _ in self.infos if (path := folder / cover.PUBLISHED_DATA).is_file()
        ]
        if not data:
            self.host.log("noxlib: no shard left coverage data; no coverage to combine")
            return
        self.host.install(COVERAGE_REQUIREMENT, "tomli; python_version < '3.11'")
        if self.self_install:
            self.host.install("--no-deps", *self.self_install)
        scratch = self.stage / ".coverage-run"  # hidden: not published
        scratch.mkdir()
        rcfile = measure.write_rcfile(self.config.root, self.config.coverage, scratch)
        roots = {info.root for _, info in self.infos} - {str(self.config.root)}
        args = [arg for path in data for arg in ("--data", str(path))]
        args += [arg for root in sorted(roots) for arg in ("--other-root", root)]
        args += ["--publish-data", str(self.stage / cover.PUBLISHED_DATA)]
        args += ["--xml", str(self.stage / cover.XML_REPORT)]
        args += ["--html", str(self.stage / cover.HTML_REPORT)]
        python, env = str(self.host.bin() / "python"), self.host.env()
        fail_under = self.config.coverage.fail_under
        self.coverage = cover.run_in_venv(python, env, fail_under, rcfile, args)
        if self.coverage.failed:
            self.reasons.append(self.coverage.sentence())

    def report(self) -> None:
        for name in _KEPT:
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(self.config.reports_path / name, self.stage / name)
        first = self.infos[0][1]
        status = RunStatus.FAILED if self.reasons else RunStatus.PASSED
        results = self.books.results if self.books else []
        summary = reports.RunSummary(
            session=first.session,
            run_id=f"combined {len(self.infos)} shards",
            groups=first.groups,
            mode=_matrix_mode([info for _, info in self.infos]),
            workers=sum(len(info.parts) for _, info in self.infos),
            status=f"{status} ({'; '.join(self.reasons)})" if self.reasons else str(status),
            wall_seconds=max(info.wall_seconds for _, info in self.infos),
            phases=tuple(self.pipeline.timings),
            results=tuple(reports.report_results(results)),
            started_at=reports.now_iso(),
            engine="",  # each machine had its own: _matrix_mode says which
            parts=tuple(_shard_row(info) for _, info in self.infos),
            failures=tuple(triage.from_annotated(results, self.config.root)),
            coverage_percent=self.coverage.total if self.coverage else None,
            books=self.books.line() if self.books else "",
        )
        write_report(summary, Settings.of(self.config, self.stage), os.environ)
        self.summary_line = reports.counts_line(summary)
        self.complete = True

    def publish(self) -> None:
        """Move the staged reports into place (signals are held: post phases run to the end)
        and merge the durations; nothing when an earlier phase did not finish."""
        if not self.complete:
            self.host.log("noxlib: combine did not finish: the reports folder is left as it was")
            return
        reports_dir = self.config.reports_path
        reports_dir.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.stage.iterdir()):
            if entry.name.startswith("."):
                continue
            _move_into(entry, reports_dir / entry.name)
        if self.merged_map is not None:
            coveragemap.write_map(self.config.map_path, self.merged_map)
            self.host.log(f"noxlib: the merged --affected map: {self.config.map_path}")
        if self.books is not None:
            ensure_state_dir(self.config.state_dir)  # with its .gitignore: the lock lives there
            files = self.config.durations
            target = files.target(store=self.store_durations)
            size = update_durations(
                target,
                self.books.results,
                root=self.config.root,
                lock=self.config.state_dir / DURATIONS_LOCK,
                recorded=files.read,
            )
            self.host.log(f"noxlib: durations of {size} tests in {target}")
        path = reports_dir / "ci_timings.md"
        self.host.log(f"noxlib: {self.summary_line}; timing report: {path}")


def _passed(status: str) -> bool:
    return status in (RunStatus.PASSED.value, RunStatus.PASSED_WITH_WARNINGS.value)


def _move_into(source: Path, target: Path) -> None:
    """``source`` replaces ``target``; a folder is swapped in whole."""
    if source.is_dir():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            target.rename(old)
        source.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def _matrix_mode(infos: Sequence[RunInfo]) -> str:
    """How a CI matrix's machines ran: "sharded across 2 machines, each serial" (one pytest
    process each), or with the processes each ran."""
    processes = [len(info.parts) for info in infos]
    if all(count == 1 for count in processes):
        how = "each serial"
    else:
        how = "with " + ", ".join(map(str, processes)) + " pytest processes"
    return f"sharded across {len(infos)} machines, {how}"


def _shard_row(info: RunInfo) -> PartRow:
    return PartRow(
        name=f"shard {info.shard}",
        status=info.status,
        tests=sum(row.tests for row in info.parts),
        predicted=max((row.predicted for row in info.parts), default=0.0),
        seconds=info.wall_seconds,
        attempts=sum(row.attempts for row in info.parts),
    )
