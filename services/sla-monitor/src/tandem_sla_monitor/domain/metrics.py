"""Handoff alignment metrics from SLA clocks: success rate and time to first touch."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from tandem_shared.events import Signal, Tier
from tandem_sla_monitor.domain.clock import ClockStatus, SlaClock

K = TypeVar("K", bound=Hashable)


class Distribution(BaseModel):
    """Median and 90th percentile of a set of durations in seconds (None when empty)."""

    model_config = ConfigDict(frozen=True)

    count: int
    median: float | None
    p90: float | None


class HandoffMetrics(BaseModel):
    """SLA outcomes of a group of handoffs."""

    model_config = ConfigDict(frozen=True)

    handoffs: int
    met: int
    breached: int
    open: int  # running and not yet past the deadline: not counted in the success rate
    success_rate: float | None  # met / (met + breached)
    first_touch_business: Distribution
    first_touch_wall: Distribution


class TierSignalMetrics(HandoffMetrics):
    tier: Tier
    signal: Signal


class SlaMetrics(BaseModel):
    """Metrics overall, by tier, by signal and by tier and signal together."""

    model_config = ConfigDict(frozen=True)

    overall: HandoffMetrics
    by_tier: dict[Tier, HandoffMetrics]
    by_signal: dict[Signal, HandoffMetrics]
    by_tier_and_signal: list[TierSignalMetrics]


def sla_metrics(clocks: Iterable[SlaClock]) -> SlaMetrics:
    """Summarize finished and open clocks by tier and signal."""
    clocks = list(clocks)
    pairs = _grouped(clocks, lambda c: (c.tier, c.signal))
    return SlaMetrics(
        overall=handoff_metrics(clocks),
        by_tier={k: handoff_metrics(v) for k, v in _grouped(clocks, lambda c: c.tier).items()},
        by_signal={k: handoff_metrics(v) for k, v in _grouped(clocks, lambda c: c.signal).items()},
        by_tier_and_signal=[
            TierSignalMetrics(tier=tier, signal=signal, **handoff_metrics(group).model_dump())
            for (tier, signal), group in sorted(pairs.items())
        ],
    )


def handoff_metrics(clocks: Sequence[SlaClock]) -> HandoffMetrics:
    """Return the success rate and first-touch times of one group of clocks."""
    met = sum(1 for c in clocks if c.status is ClockStatus.MET)
    breached = sum(1 for c in clocks if c.status is ClockStatus.BREACHED)
    touched = [c for c in clocks if c.touched_at is not None]
    decided = met + breached
    return HandoffMetrics(
        handoffs=len(clocks),
        met=met,
        breached=breached,
        open=len(clocks) - decided,
        success_rate=met / decided if decided else None,
        first_touch_business=distribution(
            [c.touch_business_seconds for c in touched if c.touch_business_seconds is not None]
        ),
        first_touch_wall=distribution(
            [(c.touched_at - c.started_at).total_seconds() for c in touched if c.touched_at]
        ),
    )


def distribution(values: Sequence[float]) -> Distribution:
    """Return the median and the 90th percentile (linear interpolation) of some durations."""
    if not values:
        return Distribution(count=0, median=None, p90=None)
    if len(values) == 1:
        return Distribution(count=1, median=float(values[0]), p90=float(values[0]))
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return Distribution(
        count=len(values), median=float(statistics.median(values)), p90=float(deciles[8])
    )


def _grouped(clocks: Iterable[SlaClock], key: Callable[[SlaClock], K]) -> dict[K, list[SlaClock]]:
    groups: dict[K, list[SlaClock]] = defaultdict(list)
    for clock in clocks:
        groups[key(clock)].append(clock)
    return dict(groups)
