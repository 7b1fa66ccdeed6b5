"""The metrics from aggregates PostgreSQL computed, with the same arithmetic as `metrics.py`.

The database counts and sorts; what is left here is exact to the bit: a percentile from the
two order statistics around it (the interpolation `statistics.quantiles` does, in its order of
operations), and the groups of time to first touch in the order `metrics.py` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tandem_api_gateway.domain.metrics import TouchTimes, touch_times_order
from tandem_shared.events import Signal, Tier

PERCENTILES = (50, 90)


def order_statistics(count: int, pct: int) -> tuple[int, int]:
    """Return the 0-based ranks of the two sorted values the pct-th percentile lies between."""
    if count < 1:
        raise ValueError("no values")
    if count == 1:
        return 0, 0
    j = pct * (count - 1) // 100
    return j, j + 1


def interpolated(count: int, pct: int, low: float | None, high: float | None) -> float | None:
    """Return the pct-th percentile of `count` values from the two order statistics around it.

    `statistics.quantiles(method="inclusive")` computes `(data[j] * (100 - delta) + data[j + 1]
    * delta) / 100` with `j, delta = divmod(pct * (count - 1), 100)`: the same here, bit for bit.
    """
    if count == 0:
        return None
    if low is None:
        raise ValueError("the lower order statistic is missing")
    if count == 1:
        return float(low)
    if high is None:
        raise ValueError("the upper order statistic is missing")
    _, delta = divmod(pct * (count - 1), 100)
    return (low * (100 - delta) + high * delta) / 100


@dataclass(frozen=True, slots=True)
class TouchGroup:
    """One (tier, signal) group of handoffs in a period, as the database aggregated it."""

    tier: Tier
    signal: Signal | None  # None: every signal of the tier
    handoffs: int
    touched: int
    # Order statistics of the touch times: for each of PERCENTILES, the values at its ranks.
    around: dict[int, tuple[float | None, float | None]]

    def times(self) -> TouchTimes:
        """Return the group's time to first touch (median and p90)."""
        p50, p90 = (interpolated(self.touched, p, *self.around[p]) for p in PERCENTILES)
        return TouchTimes(
            tier=self.tier,
            signal=self.signal,
            touched=self.touched,
            untouched=self.handoffs - self.touched,
            median_seconds=p50,
            p90_seconds=p90,
        )


def touch_times(groups: Iterable[TouchGroup]) -> tuple[TouchTimes, ...]:
    """Return the groups' times to first touch in the order `metrics.time_to_first_touch` uses."""
    ordered = sorted(groups, key=lambda g: touch_times_order((g.tier, g.signal)))
    return tuple(g.times() for g in ordered)
