"""Figures of `make bench-reads`: per-endpoint percentiles, ratios to the floor, the table.

Pure functions only, so the unit tests need no database or server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.pipeline_report import percentile, ratio

FLOOR = "floor /v1/me"
# The targets, in ms: metrics p95, list and timeline pages p95, any p99 at 16 readers.
TARGETS = {"metrics_p95": 100.0, "list_p95": 50.0, "concurrent_p99": 250.0}


@dataclass
class Samples:
    """Latencies (ms) of one endpoint at one concurrency."""

    name: str
    kind: str  # floor / metrics / list / item
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def summary(self, floor_p50: float | None) -> dict[str, Any]:
        p50, p95, p99 = (percentile(self.latencies_ms, p) for p in (50, 95, 99))
        return {
            "endpoint": self.name,
            "kind": self.kind,
            "requests": len(self.latencies_ms),
            "failures": self.failures,
            "p50_ms": _round(p50),
            "p95_ms": _round(p95),
            "p99_ms": _round(p99),
            "p95_x_floor": _round(ratio(p95, floor_p50)),
        }


def floor_p50(samples: list[Samples]) -> float | None:
    """Return the p50 of the floor endpoint among `samples`."""
    floor = next((s for s in samples if s.name == FLOOR), None)
    return percentile(floor.latencies_ms, 50) if floor else None


def misses(level: int, rows: list[dict[str, Any]]) -> list[str]:
    """Return the rows of one concurrency level that miss the issue's targets."""
    missed = []
    for row in rows:
        p95, p99 = row["p95_ms"], row["p99_ms"]
        if p95 is None or p99 is None:
            continue
        if level == 1 and row["kind"] == "metrics" and p95 > TARGETS["metrics_p95"]:
            missed.append(f"{row['endpoint']}: p95 {p95} ms > {TARGETS['metrics_p95']:.0f}")
        if level == 1 and row["kind"] == "list" and p95 > TARGETS["list_p95"]:
            missed.append(f"{row['endpoint']}: p95 {p95} ms > {TARGETS['list_p95']:.0f}")
        if level > 1 and p99 > TARGETS["concurrent_p99"]:
            missed.append(f"{row['endpoint']} x{level}: p99 {p99} ms > 250")
    return missed


def table(level: int, rows: list[dict[str, Any]], floor: float | None) -> str:
    """Return one concurrency level's rows as a fixed-width table."""
    head = f"{level} reader(s); floor p50 {_fmt(floor, '.2f')} ms"
    lines = [head, f"{'endpoint':<52}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p95/fl':>8}"]
    for row in rows:
        lines.append(
            f"{row['endpoint'][:51]:<52}{row['requests']:>6}{_fmt(row['p50_ms']):>9}"
            f"{_fmt(row['p95_ms']):>9}{_fmt(row['p99_ms']):>9}"
            f"{_fmt(row['p95_x_floor'], '.0f', 'x'):>8}"
            + (f"  {row['failures']} failed" if row["failures"] else "")
        )
    return "\n".join(lines)


def write_results(result: dict[str, Any], directory: Path, stamp: str) -> Path:
    """Write reads-<stamp>.json under `directory`; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"reads-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"
