"""The end of ``ci_timings.md``: a trend of the last comparable runs, and a regression notice.

Comparable runs are those of the same session, groups and CI shard. Pure: the runs (lines of
``ci_timings.jsonl``, oldest first, the current run last) come in as data.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

Run = Mapping[str, object]
WINDOW = 20
# The regression notice compares the pytest phase with the median of this many earlier runs...
BASELINE = 10
# ...needs at least this many of them (a median of one or two runs is one noisy run)...
MIN_BASELINE = 3
# ...and speaks when the phase took more than this share above that median.
REGRESSION = 0.20


def comparable(history: Sequence[Run], current: Run, window: int = WINDOW) -> list[Run]:
    """The last ``window`` runs of ``history`` with ``current``'s session, groups and shard,
    oldest first (``current`` itself is the last run of ``history``)."""

    def same(run: Run) -> bool:
        return all(run.get(k) == current.get(k) for k in ("session", "groups", "shard"))

    return [run for run in history if same(run)][-window:]


def pytest_seconds(run: Run) -> float | None:
    """The pytest phase of a run, None when it has none (an install that failed)."""
    phases = run.get("phases")
    if not isinstance(phases, list):
        return None
    found = [p for p in phases if isinstance(p, Mapping) and p.get("name") == "pytest"]
    return float(str(found[0].get("seconds"))) if found else None


def tests_of(run: Run) -> int:
    counts = run.get("counts")
    return sum(int(str(v)) for v in counts.values()) if isinstance(counts, Mapping) else 0


def regression_notice(runs: Sequence[Run]) -> str | None:
    """One line when the last run's pytest phase exceeds the median of the previous
    BASELINE comparable runs (interrupted ones left out) by more than REGRESSION."""
    if not runs:
        return None
    current = pytest_seconds(runs[-1])
    earlier = [
        s
        for run in runs[:-1]
        if run.get("status") != "interrupted" and (s := pytest_seconds(run)) is not None
    ][-BASELINE:]
    if current is None or len(earlier) < MIN_BASELINE:
        return None
    median = statistics.median(earlier)
    if median <= 0 or current <= median * (1 + REGRESSION):
        return None
    over = 100 * (current / median - 1)
    return (
        f"Regression: the pytest phase took {current:.2f} s, {over:.0f} % over the median "
        f"{median:.2f} s of the previous {len(earlier)} comparable runs (more than "
        f"{REGRESSION * 100:.0f} % is a regression, or other hardware)."
    )


def _label(run: Run) -> str:
    # "2026-11-22T10:04:05+0000" -> "11-22 10:04"
    started = str(run.get("started_at", ""))
    return f"{started[5:10]} {started[11:16]}".strip() or "?"


def mermaid_chart(runs: Sequence[Run], title: str) -> list[str]:
    """A Mermaid ``xychart-beta`` (rendered by GitHub): bars of wall time, a line of the
    pytest phase, one per run."""
    walls = [float(str(run.get("wall_seconds", 0.0))) for run in runs]
    phases = [pytest_seconds(run) or 0.0 for run in runs]
    top = max(1, math.ceil(max([*walls, *phases, 0.0]) * 1.1))
    labels = ", ".join(f'"{_label(run)}"' for run in runs)
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{title.replace(chr(34), chr(39))}"',
        f"    x-axis [{labels}]",
        f'    y-axis "seconds" 0 --> {top}',
        f"    bar [{', '.join(f'{w:.2f}' for w in walls)}]",
        f"    line [{', '.join(f'{p:.2f}' for p in phases)}]",
        "```",
    ]


def _coverage(run: Run) -> str:
    value = run.get("coverage_percent")
    return f"{float(str(value)):.1f}" if isinstance(value, (int, float)) else "—"


def _peak(run: Run) -> str:
    value = run.get("peak_rss_bytes")  # 0: the run did not sample its memory
    return f"{value / 2**20:.0f} MiB" if isinstance(value, (int, float)) and value > 0 else "—"


def trend_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| run | status | tests | workers | engine | coverage % | peak memory | wall s "
        "| pytest s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        pytest_phase = pytest_seconds(run)
        cells = (
            _label(run),
            str(run.get("status", "")).replace("|", "/"),
            str(tests_of(run)),
            str(run.get("workers", "")),
            str(run.get("engine", "")),
            _coverage(run),
            _peak(run),
            f"{float(str(run.get('wall_seconds', 0.0))):.2f}",
            "—" if pytest_phase is None else f"{pytest_phase:.2f}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_trend(history: Sequence[Run]) -> list[str]:
    """The "Trend" section for the last run of ``history``: chart, table, regression line."""
    if not history:
        return []
    current = history[-1]
    runs = comparable(history, current)
    groups = current.get("groups")
    named = ", ".join(map(str, groups)) if isinstance(groups, list) and groups else "paths"
    what = f"{current.get('session')} ({named})"
    lines = [
        "## Trend",
        "",
        f"The last {len(runs)} comparable runs of {what}, oldest first. Bars: wall time; "
        "line: the pytest phase.",
        "",
        *mermaid_chart(runs, f"{what}: seconds per run"),
        "",
        *trend_table(runs),
        "",
    ]
    notice = regression_notice(runs)
    return [*lines, f"> {notice}", ""] if notice else lines
