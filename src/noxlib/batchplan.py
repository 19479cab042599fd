"""A batched run's batches, as pytest collects them.

pytest decides what a batch holds: before any batch runs, one ``pytest --collect-only`` per
batched group (with the project's ini, ``python_files``, ``collect_ignore``,
``norecursedirs`` and conftest hooks, and the group's markers) lists its tests. Each test
then belongs to exactly one batch: its file's (``batch = "file"``) or its group's, in the
first group that lists it, so groups with overlapping paths never run a test twice. Each batch
runs exactly its ids (``NOXLIB_SELECT_FILE``); a file that failed to collect is a batch of its
own, so that its error is reported.

Also here: ``--resume`` (leave out what passed last time) and the check after each batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from noxlib import reaping
from noxlib.batches import BatchCheck, batch_check, previous_batches, server_events
from noxlib.config import Config, Group
from noxlib.durations import file_of
from noxlib.engine import run_parts
from noxlib.idfile import read_ids
from noxlib.merge import read_results
from noxlib.partrun import Part, PartOutcome
from noxlib.plan import Batch, Plan, pytest_args
from noxlib.reaping.runs import PART_NAME_ENV, Run

Log = Callable[[str], object]
_AFTER_DASHES = "paths given after --"


class BatchPlan:
    """The batches of one run: found by `collect`, checked after each one ends."""

    def __init__(self, plan: Plan, config: Config, session: str) -> None:
        self.plan, self.config, self.session = plan, config, session
        self.batches: list[Batch] = []
        self.rows: list[BatchCheck] = []
        self.skipped: list[str] = []

    @property
    def wanted(self) -> list[tuple[Group | None, str]]:
        """(group, "file" or "group") for each batched group; (None, mode) for the paths given
        after --. [] when nothing is batched."""
        mode = self.plan.options.batch
        groups = self.plan.groups
        if not mode and not any(g.batch for g in groups):
            return []
        if self.plan.explicit_paths:
            return [(None, mode or next((g.batch for g in groups if g.batch), "group"))]
        return [(g, mode or g.batch or "group") for g in groups]

    def collect(self, python: str, env: dict[str, str], run_dir: Path, log: Log) -> None:
        """Ask pytest which tests each batched group holds, and cut them into batches."""
        wanted = self.wanted
        if not wanted:
            if self.plan.options.resume:
                log(
                    "noxlib: --resume: this run has no batches (a group's batch setting, "
                    "or --batch)"
                )
            return
        parts = [
            self._listing(python, env, run_dir / "collect" / f"{i:03d}", group)
            for i, (group, _) in enumerate(wanted, 1)
        ]
        outcomes = run_parts(parts, self.plan.slots)
        taken: set[str] = set()
        for (group, mode), outcome in zip(wanted, outcomes, strict=True):
            self.batches += self._cut(group, mode, outcome.part, taken)
        self._resume(log)

    def _listing(self, python: str, env: dict[str, str], folder: Path, group: Group | None) -> Part:
        paths = tuple(self.plan.paths(self.config.root)) if group is None else group.paths
        listing = Batch(group.name if group else _AFTER_DASHES, paths, group, None)
        args = [*pytest_args(self.plan, self.config, None, listing), "--collect-only", "-q"]
        name = f"collect {listing.name}"
        return Part(name, (python, "-m", "pytest", *args), {**env, PART_NAME_ENV: name}, folder)

    def _cut(self, group: Group | None, mode: str, listing: Part, taken: set[str]) -> list[Batch]:
        ids = [i for i in read_ids(listing.files.listed) if i not in taken]
        taken.update(ids)
        errors = [str(r["nodeid"]) for r in read_results(listing.files.results)]
        name = group.name if group else _AFTER_DASHES
        timeout = group.batch_timeout if group else self._explicit_timeout()
        if mode == "group":
            paths = group.paths if group else tuple(self.plan.paths(self.config.root))
            return [Batch(name, paths, group, timeout, tuple(ids))] if ids or errors else []
        by_file: dict[str, list[str]] = {}
        for nodeid in ids:
            by_file.setdefault(file_of(nodeid), []).append(nodeid)
        found = [Batch(f, (f,), group, timeout, tuple(i)) for f, i in by_file.items()]
        # A file that failed to collect has no ids: a batch of its own reports its error.
        found += [Batch(e, (e,), group, timeout, None) for e in errors if e not in by_file]
        return found

    def _explicit_timeout(self) -> float | None:
        return next((g.batch_timeout for g in self.plan.groups if g.batch_timeout), None)

    def _resume(self, log: Log) -> None:
        """``--resume``: leave out the batches that passed in the last run of this session and
        these groups, and say which."""
        if not self.plan.options.resume:
            return
        groups = [g.name for g in self.plan.groups]
        history = self.config.reports_path / "ci_timings.jsonl"
        found = previous_batches(history, self.session, groups)
        if found is None:
            log(
                f"noxlib: --resume: no earlier batched run of session {self.session} "
                f"with groups {', '.join(groups)}; running every batch"
            )
            return
        run_id, statuses = found
        passed = {name for name, status in statuses.items() if status in ("passed", "skipped")}
        self.skipped = [b.name for b in self.batches if b.name in passed]
        self.batches = [b for b in self.batches if b.name not in passed]
        log(
            f"noxlib: --resume: skipping {len(self.skipped)} batch(es) that passed in run "
            f"{run_id} ({', '.join(self.skipped) or 'none'}); running "
            f"{len(self.batches)}: {', '.join(b.name for b in self.batches) or 'none'}"
        )

    def after_part(self, run: Run, log: Log) -> Callable[[PartOutcome], None]:
        """The engine's end-of-part callback: before a slot takes its next batch, what the
        batch left behind, said in one line."""

        def check(outcome: PartOutcome) -> None:
            if not self.batches:
                return
            reaped = reaping.reap_part(run, outcome.part.name, log, grace=self.config.reap_grace)
            leftovers = [f"{r.name} pid {r.pid}" for r in reaped]
            row = batch_check(outcome, leftovers, server_events(outcome.part.files))
            self.rows.append(row)
            if row.line:
                log(f"noxlib: {row.line}")

        return check

    def longest_timeout(self) -> float | None:
        return max((b.timeout for b in self.batches if b.timeout), default=None)

    def report_rows(self) -> list[dict[str, object]]:
        """The run's batches for the report: those that ran, then those --resume skipped."""
        rows = [check.as_json() for check in self.rows]
        skipped = {"status": "skipped", "seconds": 0.0, "dirty": False, "dirty_reasons": []}
        return rows + [{"name": name, **skipped} for name in self.skipped]
