"""The metrics from aggregates PostgreSQL computed, with the same arithmetic as `metrics.py`.

The database counts; what is left here is exact to the bit: a percentile from the two order
statistics around it (the interpolation `statistics.quantiles` does, in its order of
operations), the groups of time to first touch in the order `metrics.py` lists them, and the
cut of a period into whole UTC days (the per-day aggregates) and partial days (the rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

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
    met: int = 0  # the verdicts of the tier's cohort: on the tier's group (signal None) only
    resolved: int = 0

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


@dataclass(frozen=True, slots=True)
class DaySplit:
    """A half-open period cut into whole UTC days, which the per-day aggregates answer, and the
    parts of days at its edges, which the rows themselves answer (at most two spans)."""

    days: bool  # whether any whole day lies in the period
    first_day: date | None  # the first whole day; None: from the beginning
    end_day: date | None  # the day after the last whole day; None: to the end
    edges: tuple[tuple[datetime, datetime], ...]  # half-open spans shorter than a day


def split_days(start: datetime | None, end: datetime | None) -> DaySplit:
    """Cut [start, end) into whole UTC days and the spans left at its edges."""
    return _split(start, end, _floor_day)


def split_months(start: datetime | None, end: datetime | None) -> DaySplit:
    """Cut [start, end) into whole UTC months (first_day and end_day the first days of months)
    and the spans left at its edges."""
    return _split(start, end, _floor_month)


def _split(
    start: datetime | None, end: datetime | None, floor: Callable[[datetime], datetime]
) -> DaySplit:
    first = None if start is None else _ceil(start, floor)
    last = None if end is None else floor(end)
    within_a_day = first is not None and last is not None and first >= last
    if start is not None and end is not None and within_a_day:
        # No whole day (month) inside: the rows answer the whole period.
        return DaySplit(days=False, first_day=None, end_day=None, edges=((start, end),))
    edges: list[tuple[datetime, datetime]] = []
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if end is not None and last is not None and last < end:
        edges.append((last, end))
    return DaySplit(
        days=True,
        first_day=None if first is None else first.date(),
        end_day=None if last is None else last.date(),
        edges=tuple(edges),
    )


def _floor_day(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a period's bounds must carry their time zone")
    return datetime.combine(at.astimezone(UTC).date(), time(), UTC)


def _floor_month(at: datetime) -> datetime:
    return _floor_day(at).replace(day=1)


def _ceil(at: datetime, floor: Callable[[datetime], datetime]) -> datetime:
    # The next boundary: the floor of a time past this floor's span (a day, or a month of at
    # most 31 days).
    below = floor(at)
    return (
        below if below == at else floor(below + timedelta(days=31 if floor is _floor_month else 1))
    )


def locate(counts: Mapping[int, int], rank: int) -> tuple[int, int]:
    """Return the bucket of a histogram (buckets numbered in value order) that holds the value
    of 0-based `rank`, and that value's rank among the bucket's values."""
    seen = 0
    for bucket in sorted(counts):
        if rank < seen + counts[bucket]:
            return bucket, rank - seen
        seen += counts[bucket]
    raise ValueError(f"rank {rank} is beyond the {seen} values counted")
