"""The report's view past one run's timings: its failures triaged and grouped by root cause,
the flakiness rate, the trend of comparable runs; ``reports/flaky.md``; GitHub's step summary.

Used by the run's report phase and by ``combine``; no nox, no pytest.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from noxlib import causes, history, reports, trend, triage
from noxlib.ctrf import write_ctrf
from noxlib.files import write_atomic

if TYPE_CHECKING:
    from noxlib.config import Config

TIMINGS_FILE = "ci_timings.jsonl"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Settings:
    """What the findings need from the configuration."""

    reports_dir: Path
    reports_name: str  # as the user wrote it ("reports"), for the lines that name files
    flaky_threshold: float
    triage_reruns: int
    tolerate_flaky: bool

    @classmethod
    def of(cls, config: Config, reports_dir: Path | None = None) -> Settings:
        """The settings of ``config``; ``reports_dir`` writes the reports elsewhere than the
        configured folder (combine builds them in a staging folder)."""
        return cls(
            reports_dir=reports_dir or config.reports_path,
            reports_name=config.reports_dir,
            flaky_threshold=config.flaky_threshold,
            triage_reruns=config.triage_reruns,
            tolerate_flaky=config.tolerate_flaky,
        )


def write_report(
    summary: reports.RunSummary, settings: Settings, env: Mapping[str, str]
) -> tuple[Path, reports.RunSummary]:
    """Write ``ci_timings.md`` (with the failures, root causes, flakiness and trend),
    ``ci_timings.jsonl``, ``flaky.md``, ``ctrf.json``, and under GitHub Actions the step
    summary. Returns the
    .md path and the summary as written."""
    started = time.perf_counter()
    runs = [*history.read_history(settings.reports_dir / TIMINGS_FILE)]
    runs.append(json.loads(reports.to_json_line(summary)))
    rate = history.flakiness(runs, settings.flaky_threshold, summary.session)
    found = [
        *triage.render_failures(
            summary.failures, reruns=settings.triage_reruns, tolerate=settings.tolerate_flaky
        ),
        *causes.render_digest([(f.nodeid, f.cause) for f in summary.failures]),
    ]
    flakiness = flakiness_section(rate, settings.reports_name, parallel=summary.mode != "serial")
    found += summary.shadow.lines() if summary.shadow else []
    summary = replace(summary, sections=(*found, *flakiness, *trend.render_trend(runs)))
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(settings.reports_dir / history.FLAKY_FILE, history.render_flaky_md(runs))
    write_ctrf(settings.reports_dir, summary, env)
    step_summary = env.get(STEP_SUMMARY_ENV)
    if step_summary:
        text = "\n".join([*reports.render_head(summary), *found, *flakiness])
        with contextlib.suppress(OSError), open(step_summary, "a", encoding="utf-8") as out:
            out.write(text.rstrip("\n") + "\n\n")
    # Last: the history line records what all of the above cost.
    path = reports.write_reports(settings.reports_dir, summary, started)
    return path, summary


def flakiness_section(rate: history.Flakiness, reports_name: str, *, parallel: bool) -> list[str]:
    """The roll-back signal of the run's session: the rollback line when it is above the
    threshold, else the figure (or how many runs it still needs); what order-dependent
    failures ask for. A serial run says that it is not counted."""
    described = rate.describe()
    line = history.rollback_line(rate, reports_name) or f"{described[0].upper()}{described[1:]}."
    if not parallel:
        line = (
            "This run was serial: the roll-back signal reads parallel runs only, and "
            f"PYTEST_WORKERS=1 has nothing to fix here. {line}"
        )
    order = history.order_dependent_line(rate, reports_name)
    return ["## Flakiness", "", line, *(["", order] if order else []), ""]


def coverage_percent(xml: Path, since: float) -> float | None:
    """Total line coverage from a Cobertura ``xml`` written at or after ``since`` (a report
    left by an earlier run says nothing about this one); None when unknown."""
    import xml.etree.ElementTree as ET  # here only: a run without coverage skips it

    try:
        if os.stat(xml).st_mtime < since:
            return None
        rate = ET.parse(xml).getroot().get("line-rate")
        return round(100.0 * float(rate), 2) if rate is not None else None
    except (OSError, ET.ParseError, ValueError):
        return None
