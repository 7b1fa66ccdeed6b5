"""bench-reads' pure helpers: per-endpoint summaries, the floor, the targets missed."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.reads_report import FLOOR, Samples, floor_p50, misses, table, write_results


def test_summary_is_relative_to_the_floor(tmp_path: Path) -> None:
    floor = Samples(FLOOR, "floor", [2.0] * 10)
    metrics = Samples("metrics period=30d", "metrics", [float(v) for v in range(1, 101)], 1)
    base = floor_p50([floor, metrics])
    assert base == 2.0
    row = metrics.summary(base)
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (50, 95, 99)
    assert row["p95_x_floor"] == 47.5
    assert "1 failed" in table(1, [row], base)
    path = write_results({"levels": {"1": [row]}}, tmp_path, "stamp")
    assert json.loads(path.read_text())["levels"]["1"][0]["endpoint"] == "metrics period=30d"


def test_misses_name_each_target() -> None:
    slow = Samples("metrics period=all", "metrics", [150.0] * 20).summary(1.0)
    page = Samples("handoffs", "list", [60.0] * 20).summary(1.0)
    fine = Samples("alerts", "list", [10.0] * 20).summary(1.0)
    assert misses(1, [slow, page, fine]) == [
        "metrics period=all: p95 150.0 ms > 100",
        "handoffs: p95 60.0 ms > 50",
    ]
    assert misses(16, [slow, page, fine]) == []
    assert misses(16, [Samples("x", "item", [300.0]).summary(1.0)]) == ["x x16: p99 300.0 ms > 250"]
