"""The bench's pure helpers: percentiles, ratios, drain rates, the Markdown report."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.pipeline_report import (
    Drain,
    Latencies,
    drain_summary,
    markdown,
    percentile,
    ratio,
    write_results,
)
from benchmarks.slack_sink import ACCOUNT_NAME, markers_of


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([], 50) is None


def test_ratio_needs_both_figures() -> None:
    assert ratio(50, 200) == 0.25
    assert ratio(None, 200) is None
    assert ratio(50, 0) is None


def test_drain_rate_runs_from_first_input_to_last_output() -> None:
    drain = Drain("router", expected=100, done=100, first_input=1.0, last_output=5.0)
    drain.cpu_seconds = 2.0
    assert drain.reached
    assert drain.rate == 25
    assert drain.cpu_ms_per_event == 20
    summary = drain_summary(drain, floor_rate=1000)
    assert summary["of_floor"] == 0.025


def test_an_unfinished_drain_reports_how_far_it_got() -> None:
    drain = Drain("alerts", expected=100, done=40, first_input=0.0, last_output=8.0)
    assert not drain.reached
    assert drain.rate == 5
    assert Drain("gateway", expected=10).rate is None


def test_markdown_marks_what_was_not_reached(tmp_path: Path) -> None:
    level = Latencies("steady @50/s", 50, sent=3, received_ms=[10.0, 20.0], note="1 late")
    result = {
        "started": "20261202T060000Z",
        "tree": "main",
        "burst": {
            "events": 100,
            "floor_events_per_s": 1000.0,
            "services": [drain_summary(Drain("router", 100, 40, 0.0, 8.0), 1000.0)],
        },
        "steady": [{**level.summary(), "floor_p99_ms": 5.0}],
    }
    text = markdown(result)
    assert "| router | 40/100 (not reached) | 5 | 0.5% |" in text
    assert "| steady @50/s | 3 | 2 | 20 | late | late | 5.0 | - |" in text
    json_path, md_path = write_results(result, tmp_path, "stamp")
    assert json.loads(json_path.read_text())["burst"]["events"] == 100
    assert md_path.read_text() == text


def test_slack_messages_name_their_bench_account() -> None:
    title = f"Meeting request: {ACCOUNT_NAME.format(42)} (tier 1)"
    assert markers_of(title) == [42]
    summary = f"2 Tandem alerts\n• {title}\n• Meeting request: {ACCOUNT_NAME.format(7)} (tier 1)"
    assert markers_of(summary) == [42, 7]
    assert markers_of(f"Tandem digest: 2 alerts ({ACCOUNT_NAME.format(42)})") == []


def test_percentiles_count_the_messages_still_missing() -> None:
    level = Latencies("steady @50/s", 50, sent=100, received_ms=[float(v) for v in range(1, 97)])
    assert level.percentile(50) == 50
    assert level.percentile(95) == 95
    assert level.percentile(99) is None  # 4 of 100 never arrived: p99 is one of them
    assert level.summary()["not_reached"] == ["p99"]
    assert Latencies("none", 50, sent=5).percentile(50) is None
