"""Figures of `make bench-pipeline`: percentiles, ratios to the floor, and the Markdown table.

Pure functions only, so the unit tests need no broker, database or server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], p: float) -> float | None:
    """Return the p-th percentile (0..100, nearest rank) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(ours: float | None, floor: float | None) -> float | None:
    """Return ours / floor, None when either is missing or the floor is zero."""
    if ours is None or floor is None or floor == 0:
        return None
    return ours / floor


@dataclass
class Drain:
    """How one service drained the burst, from its own output."""

    service: str
    expected: int
    done: int = 0
    first_input: float | None = None  # seconds after the burst started
    last_output: float | None = None
    cpu_seconds: float | None = None

    @property
    def reached(self) -> bool:
        return self.done >= self.expected

    @property
    def rate(self) -> float | None:
        """Events/s from the first event available to the service until its last output."""
        if self.first_input is None or self.last_output is None or self.done == 0:
            return None
        return self.done / max(self.last_output - self.first_input, 1e-3)

    @property
    def cpu_ms_per_event(self) -> float | None:
        if self.cpu_seconds is None or self.done == 0:
            return None
        return self.cpu_seconds / self.done * 1000


@dataclass
class Latencies:
    """Webhook-to-Slack latencies (ms) of one traffic level."""

    label: str
    target_rate: float
    sent: int = 0
    send_rate: float = 0.0
    received_ms: list[float] = field(default_factory=list)
    note: str = ""
    # Time (ms) per service on the way: webhook to its event on Kafka (ingest), to the alert
    # request on Kafka (router), to Slack (alerts). Producer timestamps, so it includes relays.
    hops: dict[str, list[float]] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return self.sent - len(self.received_ms)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "target_rate": self.target_rate,
            "sent": self.sent,
            "send_rate": round(self.send_rate, 1),
            "received": len(self.received_ms),
            "missing": self.missing,
            **{f"p{p}_ms": _round(self.percentile(p)) for p in (50, 95, 99)},
            # The percentiles a message still missing falls on: later than the wait allowed.
            "not_reached": [f"p{p}" for p in (50, 95, 99) if self._missed(p)],
            "hops_ms": {
                name: {f"p{p}": _round(percentile(times, p)) for p in (50, 99)}
                for name, times in self.hops.items()
                if times
            },
            "note": self.note,
        }

    def percentile(self, p: float) -> float | None:
        """The p-th percentile over every message sent, None when it falls on a missing one."""
        if self._missed(p):
            return None
        return percentile(self.received_ms, p * self.sent / len(self.received_ms))

    def _missed(self, p: float) -> bool:
        return not self.received_ms or math.ceil(p / 100 * self.sent) > len(self.received_ms)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


# Whose output each service's burst input is: its tail after it says whether it keeps up.
UPSTREAM = {
    "router": "ingest",
    "sla-monitor": "router",
    "alerts": "router",
    "api-gateway": "sla-monitor",
}


def drain_summary(
    drain: Drain, floor_rate: float | None, upstream: Drain | None = None
) -> dict[str, Any]:
    tail = None
    if upstream is not None and upstream.last_output is not None and drain.last_output is not None:
        tail = drain.last_output - upstream.last_output
    return {
        "service": drain.service,
        "expected": drain.expected,
        "done": drain.done,
        "reached": drain.reached,
        "first_input_s": _round(drain.first_input, 3),
        "last_output_s": _round(drain.last_output, 3),
        "events_per_s": _round(drain.rate),
        "of_floor": _round(ratio(drain.rate, floor_rate), 4),
        "cpu_ms_per_event": _round(drain.cpu_ms_per_event, 3),
        "tail_after_upstream_s": _round(tail, 2),
    }


def markdown(result: dict[str, Any]) -> str:
    """Return the run's short Markdown report (the tables printed at the end)."""
    lines = [f"# bench-pipeline {result['started']} ({result['tree']})", ""]
    lines += [f"- {k}: {v}" for k, v in result.get("setup", {}).items()]
    burst = result.get("burst")
    if burst:
        lines += ["", f"## burst: {burst['events']} meeting requests, distinct TAL accounts", ""]
        lines += [
            "| service | done | events/s | of floor | cpu ms/event | tail after upstream |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in burst["services"]:
            done = f"{row['done']}/{row['expected']}" + ("" if row["reached"] else " (not reached)")
            lines.append(
                f"| {row['service']} | {done} | {_fmt(row['events_per_s'])} "
                f"| {_fmt(row['of_floor'], '.1%')} | {_fmt(row['cpu_ms_per_event'], '.2f')} "
                f"| {_fmt(row.get('tail_after_upstream_s'), '.1f', ' s')} |"
            )
        floor = _fmt(burst.get("floor_events_per_s"))
        lines.append(f"| floor (3 bare aiokafka hops) | | {floor} | | | |")
    latency_rows = [*result.get("steady", []), *filter(None, [result.get("head_of_line")])]
    if latency_rows:
        lines += ["", "## webhook to Slack", ""]
        lines += [
            "| level | sent | received | p50 ms | p95 ms | p99 ms | floor p99 ms | p99 x floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in latency_rows:
            floor_p99 = row.get("floor_p99_ms")
            late = set(row.get("not_reached", []))
            p50, p95, p99 = (
                "late" if f"p{p}" in late else _fmt(row[f"p{p}_ms"]) for p in (50, 95, 99)
            )
            lines.append(
                f"| {row['label']} | {row['sent']} | {row['received']} | {p50} | {p95} | {p99} "
                f"| {_fmt(floor_p99, '.1f')} "
                f"| {_fmt(ratio(row['p99_ms'], floor_p99), '.0f', 'x')} |"
            )
        if any(row.get("not_reached") for row in latency_rows):
            lines.append("- late: that share of the messages was not on Slack when the wait ended")
        lines += [f"- {row['label']}: {row['note']}" for row in latency_rows if row.get("note")]
        for row in latency_rows:
            hops = ", ".join(
                f"{name} p50 {_fmt(t['p50'])} / p99 {_fmt(t['p99'])} ms"
                for name, t in row.get("hops_ms", {}).items()
            )
            if hops:
                lines.append(f"- {row['label']}, time in each service: {hops}")
    lines += [f"- note: {note}" for note in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], directory: Path, stamp: str) -> tuple[Path, Path]:
    """Write pipeline-<stamp>.json and .md under `directory`; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"pipeline-{stamp}.json"
    md_path = directory / f"pipeline-{stamp}.md"
    json_path.write_text(json.dumps(result, indent=2, default=_default) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path


def _default(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    return str(value)
