"""What a run's failures are judged on, for its post phase ``triage``: the reruns (reruns.py),
the quarantine (quarantine.py), and the evidence of earlier runs at the same code (history.py).

Host-free like the run it serves: everything comes through the `run.TestRun` it is given.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from noxlib import coveragemap, history, quarantine, reaping, reruns
from noxlib.batchplan import BatchPlan
from noxlib.choice import Engine as EngineChoice
from noxlib.config import Config
from noxlib.findings import TIMINGS_FILE
from noxlib.gitdiff import GitError
from noxlib.host import Host
from noxlib.launch import Launch
from noxlib.outcomes import RunStatus
from noxlib.partrun import Part
from noxlib.plan import Plan, pytest_args
from noxlib.reaping import Run
from noxlib.triage import Failure


class Judged(Protocol):
    """What judging needs of the run (`run.TestRun`)."""

    host: Host
    config: Config
    plan: Plan
    run: Run
    status: RunStatus
    failures: list[Failure]
    parts: list[Part]
    batch_plan: BatchPlan
    code: str

    @property
    def results(self) -> list[dict[str, object]]: ...

    def launch(self) -> Launch: ...

    def fail(self, reason: str) -> None: ...


class Judging:
    """Reruns, quarantine and history for one run (``t``)."""

    def __init__(self, test_run: Judged) -> None:
        self.t = test_run
        self.inputs_key: str | None = None

    def rerun(self, failed: Sequence[Mapping[str, object]]) -> list[Failure]:
        interrupted = self.t.status is RunStatus.INTERRUPTED
        runner = reruns.Rerunner(
            self.rerun_argv,
            self.t.launch().env,
            self.t.run.dir / "triage",
            self.rerun_seconds(),
            reruns.start_allowance(self.collection_seconds()),
            test_timeout=self.rerun_test_timeout(),
        )
        return reruns.triage_failures(
            failed,
            self.t.results,
            self.t.config,
            self.t.plan,
            runner=runner,
            interrupted=interrupted,
            log=self.t.host.log,
            reap=lambda: reaping.reap_run(
                self.t.run, self.t.host.log, grace=self.t.config.reap_grace
            ),
            history=self.history_passes(failed),
        )

    def hold(self, failures: list[Failure]) -> list[Failure]:
        """The quarantine: the failures it covers are marked (they fail no run); an expired
        entry fails the run, green or not."""
        entries = self.t.config.quarantine
        if not entries:
            return failures
        collected = [str(r["nodeid"]) for r in self.t.results]
        held = quarantine.judge(
            entries, [f.nodeid for f in failures], collected, datetime.date.today()
        )
        for entry in held.unmatched:
            self.t.host.log(
                f"noxlib: quarantine entry {entry.nodeid} ({entry.source}) matches no test this "
                "run collected: remove it if the test is gone"
            )
        marked = [
            replace(f, quarantined=held.covered[f.nodeid].describe())
            if f.nodeid in held.covered
            else f
            for f in failures
        ]
        for failure in marked:
            if failure.quarantined:
                self.t.host.log(f"noxlib: {failure.nodeid} failed; {failure.quarantined}")
        if held.expired:
            self.t.host.log(f"noxlib: {held.expired_line()}")
            self.t.fail(held.expired_line())
        return marked

    def reap(self) -> None:
        """End what the reruns left: they run after the run's own reap phase."""
        reaping.reap_run(self.t.run, self.t.host.log, grace=self.t.config.reap_grace)

    def rerun_seconds(self) -> float:
        """What one test may take in a rerun: the run's own per-test limit, else a default
        (a rerun without a limit could hang the run's end)."""
        if self.t.plan.mode.ci and self.t.config.ci_timeout > 0:
            return self.t.config.ci_timeout
        return self.t.batch_plan.longest_timeout() or reruns.DEFAULT_TEST_SECONDS

    def rerun_test_timeout(self) -> float | None:
        """The limit the engine holds each rerun test to, from its start; None where the
        rerun's pytest-timeout does (``ci-timeout``), since a test's own timeout marker may
        give it longer."""
        if self.t.plan.mode.ci and self.t.config.ci_timeout > 0:
            return None
        return self.rerun_seconds()

    def collection_seconds(self) -> list[float]:
        """How long each part's first process took to collect (from its plugin's start)."""
        found = (part.files.collection_seconds() for part in self.t.parts)
        return [seconds for seconds in found if seconds is not None]

    def rerun_argv(self, nodeids: Sequence[str]) -> tuple[str, ...]:
        """A rerun: the run's pytest arguments for one serial process (timeout, user's
        arguments), over the failed tests' files, without coverage."""
        serial = replace(
            self.t.plan, engine=EngineChoice("serial", ""), groups=(), explicit_paths=True
        )
        args = pytest_args(serial, self.t.config)
        paths = reruns.rerun_paths(
            nodeids, self.t.config.root, self.t.plan.paths(self.t.config.root)
        )
        return reruns.rerun_argv(str(self.t.host.bin() / "python"), paths, args)

    def past(self) -> list[dict[str, object]]:
        return history.read_history(self.t.config.reports_path / TIMINGS_FILE)

    def inputs(self) -> str:
        """The run's code and inputs (history.inputs_key); "" outside git. Git is asked only
        by a run with failures, or with recent failures to watch."""
        if self.inputs_key is None:
            self.t.code = self.t.code or self.identify_any_code()
            groups = [g.name for g in self.t.plan.groups]
            self.inputs_key = history.inputs_key(
                self.t.code, self.t.host.name, groups, self.t.plan.user_args
            )
        return self.inputs_key

    def identify_any_code(self) -> str:
        try:
            return coveragemap.code_digest(*coveragemap.map_base(self.t.config.root))
        except GitError:
            return ""

    def evidence_fields(self) -> tuple[str, tuple[str, ...]]:
        """What the history line records for the cross-run evidence (none for a run that
        was interrupted: its passes stand for nothing)."""
        watched = history.watched(self.past())
        passed = [
            str(r["nodeid"])
            for r in self.t.results
            if r.get("nodeid") in watched and r.get("outcome") == "passed"
        ]
        if self.t.status is RunStatus.INTERRUPTED or not (passed or self.t.failures):
            return "", ()
        return self.inputs(), tuple(passed)

    def history_passes(self, failed: Sequence[Mapping[str, object]]) -> dict[str, str]:
        ids = [str(r["nodeid"]) for r in failed]
        return history.passes_at(self.past(), self.inputs(), ids, self.t.code)
