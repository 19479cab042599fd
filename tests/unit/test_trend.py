"""The trend at the end of ci_timings.md: comparable runs, chart, table, regression notice."""

from __future__ import annotations

from noxlib.trend import (
    comparable,
    mermaid_chart,
    regression_notice,
    render_trend,
    trend_table,
)


def run(
    pytest_s: float, *, session: str = "ci", groups: tuple[str, ...] = ("unit",), **extra: object
) -> dict[str, object]:
    return {
        "started_at": "2026-11-22T10:04:05+0000",
        "session": session,
        "groups": list(groups),
        "shard": None,
        "status": "passed",
        "workers": 2,
        "engine": "shards",
        "wall_seconds": pytest_s + 3.0,
        "counts": {"passed": 7, "failed": 1},
        "phases": [{"name": "install", "seconds": 1.0}, {"name": "pytest", "seconds": pytest_s}],
        **extra,
    }


def test_comparable_runs_share_session_groups_and_shard() -> None:
    history = [
        run(1.0),
        run(2.0, session="tests"),
        run(3.0, groups=("unit", "db")),
        run(4.0, shard="1/3"),
        run(5.0),
    ]
    assert [r["phases"][1]["seconds"] for r in comparable(history, history[-1])] == [1.0, 5.0]  # type: ignore[index]
    many = [run(float(i)) for i in range(30)]
    assert len(comparable(many, many[-1])) == 20


def test_a_regression_is_more_than_twenty_percent_over_the_median_of_ten() -> None:
    earlier = [run(10.0)] * 4 + [run(s) for s in (9.0, 11.0, 10.0, 10.0, 10.5, 9.5)]
    assert regression_notice([*earlier, run(12.0)]) is None  # +20 % exactly: not more
    notice = regression_notice([*earlier, run(12.5)])
    assert notice is not None
    assert "12.50 s, 25 % over the median 10.00 s of the previous 10 comparable runs" in notice
    # Only the previous ten count: a slow run long ago does not move the median.
    assert regression_notice([run(100.0)] * 5 + [*earlier, run(12.0)]) is None


def test_no_notice_without_a_baseline_and_interrupted_runs_are_left_out() -> None:
    assert regression_notice([run(1.0), run(1.0), run(9.0)]) is None  # two runs: no baseline
    cut_short = [run(1.0, status="interrupted")] * 5
    assert regression_notice([*cut_short, run(9.0)]) is None
    assert regression_notice([run(5.0)] * 3 + [run(9.0)]) is not None
    assert regression_notice([]) is None


def test_the_mermaid_chart() -> None:
    lines = mermaid_chart([run(10.0), run(12.5)], 'ci (unit) "quoted"')
    assert lines[0] == "```mermaid"
    assert lines[1] == "xychart-beta"
    assert lines[2] == "    title \"ci (unit) 'quoted'\""
    assert lines[3] == '    x-axis ["11-22 10:04", "11-22 10:04"]'
    assert lines[4] == '    y-axis "seconds" 0 --> 18'  # 15.5 s wall + 10 % = 17.05, rounded up
    assert lines[5] == "    bar [13.00, 15.50]"
    assert lines[6] == "    line [10.00, 12.50]"
    assert lines[7] == "```"


def test_the_table_shows_coverage_and_peak_memory_where_known() -> None:
    rows = trend_table(
        [run(1.0, peak_rss_bytes=0), run(2.0, coverage_percent=87.25, peak_rss_bytes=512 * 2**20)]
    )
    assert rows[0].startswith(
        "| run | status | tests | workers | engine | coverage % | peak memory |"
    )
    assert rows[2] == "| 11-22 10:04 | passed | 8 | 2 | shards | — | — | 4.00 | 1.00 |"
    assert rows[3] == "| 11-22 10:04 | passed | 8 | 2 | shards | 87.2 | 512 MiB | 5.00 | 2.00 |"


def test_the_trend_section_ends_with_the_notice() -> None:
    text = render_trend([run(5.0)] * 3 + [run(9.0)])
    assert text[0] == "## Trend"
    assert "The last 4 comparable runs of ci (unit)" in text[2]
    assert text[-2].startswith("> Regression: the pytest phase took 9.00 s")
    assert render_trend([]) == []
