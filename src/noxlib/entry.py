"""What a test session decides before its run starts: the plan, ``--affected``'s selection, the
last run's failures first, the banner. Then it hands over to `run.TestRun`.

Host-free like the run: the session's name, arguments and log come through `run.Host`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from noxlib import affected, history, runorder
from noxlib.choice import known_durations
from noxlib.config import Config
from noxlib.errors import UsageError
from noxlib.findings import TIMINGS_FILE
from noxlib.host import Host
from noxlib.machine import current_machine
from noxlib.options import help_text
from noxlib.plan import MODES, Plan, make_plan
from noxlib.reaping import start_run
from noxlib.run import TestRun


def run_tests(
    host: Host,
    config: Config,
    mode: str,
    posargs: Sequence[str],
    environ: Mapping[str, str],
    *,
    self_install: Sequence[str] = (),
    install_only: bool = False,
) -> None:
    """Run ``config``'s tests the way session ``mode`` does, with ``posargs`` from the command
    line. Raises UsageError for bad input (before any venv work) and run.RunFailed for a run
    that did not pass."""
    past = history.read_history(config.reports_path / TIMINGS_FILE)
    rate = history.flakiness(past, config.flaky_threshold, host.name)
    durations = config.durations.read()
    plan_from = functools.partial(
        make_plan, MODES[mode], posargs, environ, config, current_machine(), flakiness=rate
    )
    plan = plan_from(durations=durations)
    selection = _affected_selection(config, plan)
    if selection is not None and selection.skip:
        # Plan from the tests that will run: auto must not start shards for five tests.
        plan = plan_from(durations={k: v for k, v in durations.items() if k not in selection.skip})
    if plan.options.help:
        host.log(help_text())
        return
    run = start_run(config.state_dir)
    order = _order(host, config, plan, selection, past, rate=rate)
    shadow = _shadow_selection(host, config, plan)
    test_run = TestRun(
        host, config, plan, run, durations, order=order, self_install=self_install, shadow=shadow
    )
    if install_only:
        test_run.install_only()
    else:
        test_run.execute()


def _order(
    host: Host,
    config: Config,
    plan: Plan,
    selection: affected.Selection | None,
    past: Sequence[Mapping[str, object]],
    *,
    rate: history.Flakiness,
) -> runorder.TestOrder:
    """Say what the run does (the banner, the selection, failures first, rollback), and the
    order and selection the plugin applies."""
    for line in banner(plan, config).splitlines():
        host.log(line)
    if selection is not None:
        known = known_durations(dict.fromkeys(selection.tests, 0.0), plan.paths(config.root), None)
        host.log(f"noxlib: {selection.line(known)}")
        if plan.options.explain:
            for line in selection.explain(known):
                host.log(f"noxlib: {line}")
    first = tuple(runorder.last_failures(past, host.name))
    if selection is not None:
        # Only the failures --affected still runs go first; the rest are not run at all.
        first = tuple(nodeid for nodeid in first if nodeid not in selection.skip)
    if first:
        host.log(
            f"noxlib: the {len(first)} test(s) that failed in the last {host.name} run go first"
        )
    # The signal reads parallel runs only: a serial run has nothing to roll back.
    rollback = history.rollback_line(rate, config.reports_dir) if plan.parallel else None
    if rollback:
        host.log(f"noxlib: {rollback}")
    if selection is None:
        return runorder.TestOrder(first=first)
    uncollected = tuple(sorted(str(config.root / path) for path in selection.uncollected))
    return runorder.TestOrder(selection.skip, first, uncollected)


def _affected_selection(config: Config, plan: Plan) -> affected.Selection | None:
    """``--affected``: which tests the change since the map's commit can reach; None without
    it. Raises UsageError for a map that cannot be read."""
    if not plan.options.affected:
        return None
    return _select(config)


def _shadow_selection(host: Host, config: Config, plan: Plan) -> affected.Selection | None:
    """In ``ci`` with a map present: what ``--affected`` would select, judged after the full
    run (shadow.py). A map that cannot be read is said and skipped: ci runs everything anyway."""
    if not plan.mode.ci or plan.shard or not config.map_path.is_file():
        return None
    try:
        return _select(config)
    except UsageError as exc:
        host.log(f"noxlib: no shadow --affected in this run: {exc}")
        return None


def _select(config: Config) -> affected.Selection:
    own = [config.durations_file, config.affected.map_file, config.reports_dir.rstrip("/") + "/"]
    rules = affected.rules_for(own, config.affected.ignore, config.python_files)
    if config.affected.record:
        fix = "nox -s ci writes it; or fetch CI's"
    else:
        fix = (
            "no run writes it while tool.noxlib.affected.record is off: set record = true "
            "under [tool.noxlib.affected] and run nox -s ci, or fetch CI's map"
        )
    return affected.select_since_map(config.root, config.map_path, rules, fix)


def banner(plan: Plan, config: Config) -> str:
    """One line saying what this run does and why, printed before anything runs."""
    names = ", ".join(g.name for g in plan.groups) or "paths given after --"
    shard = f"CI shard {plan.shard}; " if plan.shard else ""
    if plan.engine.name == "serial":
        how = f"serial, {plan.engine.reason or plan.workers.reason}"
        if plan.engine.reason:
            how += f" ({plan.workers.reason})"
    else:
        how = f"{plan.engine.reason}; {plan.workers.reason}"
    line = f"noxlib: session {plan.mode.name}, groups: {names}; {shard}{how}"
    if config.assumed:
        line += (
            f"\nnoxlib: {config.assumed_because} in {config.root / 'pyproject.toml'}, so it "
            f"assumed: {'; '.join(config.assumed)}. To choose, set them in [tool.noxlib] "
            "(docs/configuration.md)."
        )
    return line
