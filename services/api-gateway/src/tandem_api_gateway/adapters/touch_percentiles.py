"""The order statistics of a period's touch times, exact, without reading every touch time.

A period's touch times are counted per tier, signal and bucket of touch time (buckets numbered
in value order): its whole UTC months by `handoff_touch_months`, the partial months at its
edges from the rows (`handoffs_handed_off_at`). The counts tell which bucket holds each order
statistic and its rank in the bucket; only those buckets' touch times in the period are read,
sorted by PostgreSQL (`handoffs_touch_bucket`: by tier, bucket and handoff time), and the rank
picked. The metrics read a few thousand aggregate rows and a few buckets, not a year of rows.
A period without a whole month reads its touch times, off `handoffs_handed_off_at`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.metric_scope import (
    Shape,
    in_period,
    measured_handoffs,
    month_edge_spans,
    summed,
    whole_months,
)
from tandem_api_gateway.adapters.tables import handoff_measures as handoffs
from tandem_api_gateway.adapters.tables import handoff_touch_months
from tandem_api_gateway.domain.metric_aggregates import PERCENTILES, locate, order_statistics

Key = tuple[str, str | None]  # (tier, signal); signal None: every signal of the tier
Around = dict[Key, dict[int, tuple[float | None, float | None]]]
_Located = dict[Key, dict[int, tuple[int, int]]]  # rank -> (bucket, rank in the bucket)


async def around(
    session: AsyncSession, shape: Shape, params: dict[str, Any], touched: dict[Key, int]
) -> Around:
    """Return, per group, the touch times at the ranks of each percentile. Run in the snapshot
    that counted `touched` (touched handoffs per group), which the buckets' counts must equal."""
    if not shape.months:
        return await _sorted(session, shape, params, touched)
    counts: dict[Key, dict[int, int]] = {}  # bucket -> touched
    for tier, signal, bucket, n in await session.execute(_counts_query(shape), params):
        for key in ((tier, None), (tier, signal)):
            group = counts.setdefault(key, {})
            group[bucket] = group.get(bucket, 0) + int(n)
    located: _Located = {}
    for key, group in counts.items():
        total = sum(group.values())
        if total != touched.get(key, 0):
            raise RuntimeError(f"{total} touch times counted in group {key}, {touched.get(key)}")
        if total:  # else counts that went back to zero
            wanted = {r for pct in PERCENTILES for r in order_statistics(total, pct)}
            located[key] = {r: locate(group, r) for r in wanted}
    buckets = await _buckets(session, shape, params, located)
    found: Around = {}
    for key, ranks in located.items():
        tier, signal = key
        picked = {r: buckets[tier, bucket][signal][n] for r, (bucket, n) in ranks.items()}
        found[key] = {}
        for pct in PERCENTILES:
            low, high = order_statistics(touched[key], pct)
            found[key][pct] = (picked[low], picked[high])
    return found


async def _sorted(
    session: AsyncSession, shape: Shape, params: dict[str, Any], touched: dict[Key, int]
) -> Around:
    """A period without a whole month (a few weeks of touch times at most): its touch times,
    one unsorted array per tier and signal, sorted here; fewer round trips than the buckets."""
    values: dict[Key, list[float]] = {}
    for tier, signal, seconds in await session.execute(_touches_query(shape), params):
        values.setdefault((tier, None), []).extend(seconds)
        values[tier, signal] = seconds
    found: Around = {}
    for key, group in values.items():
        if len(group) != touched.get(key):
            raise RuntimeError(f"{len(group)} touch times in group {key}, {touched.get(key)}")
        group.sort()
        ranks = {pct: order_statistics(len(group), pct) for pct in PERCENTILES}
        found[key] = {pct: (group[low], group[high]) for pct, (low, high) in ranks.items()}
    return found


# A bucket's touch times in order, of every signal (None) and of each signal.
_Bucket = dict[str | None, list[float]]


async def _buckets(
    session: AsyncSession, shape: Shape, params: dict[str, Any], located: _Located
) -> dict[tuple[str, int], _Bucket]:
    """The period's touch times in each (tier, bucket) a rank fell in, sorted."""
    pairs = sorted({(tier, b) for (tier, _), ranks in located.items() for b, _ in ranks.values()})
    if not pairs:
        return {}
    bound = {**params, "tiers": [t for t, _ in pairs], "buckets": [b for _, b in pairs]}
    found: dict[tuple[str, int], _Bucket] = {}
    for tier, bucket, signals, seconds in await session.execute(_buckets_query(shape), bound):
        by_signal: _Bucket = {None: seconds}
        for signal, value in zip(signals, seconds, strict=True):
            by_signal.setdefault(signal, []).append(value)
        found[tier, bucket] = by_signal
    return found


_BUCKET = sa.func.touch_bucket(handoffs.c.touch_seconds)


@cache
def _touches_query(scope: Shape) -> sa.Select[Any]:
    seconds = handoffs.c.touch_seconds
    tier, signal = handoffs.c.tier, handoffs.c.signal
    period = in_period(handoffs.c.handed_off_at, scope)
    return (
        sa.select(tier, signal, sa.func.array_agg(seconds))
        .where(*measured_handoffs(scope, period, seconds.is_not(None)))
        .group_by(tier, signal)
    )


@cache
def _counts_query(scope: Shape) -> sa.Select[Any]:
    parts: list[sa.Select[Any]] = []
    if scope.months:
        months = handoff_touch_months
        counted = (months.c.tier, months.c.signal, months.c.bucket, months.c.touched)
        parts.append(sa.select(*counted).where(*whole_months(months, scope)))
    for edge in month_edge_spans(handoffs.c.handed_off_at, scope):
        seconds = handoffs.c.touch_seconds
        keys = (handoffs.c.tier, handoffs.c.signal, _BUCKET.label("bucket"))
        parts.append(
            sa.select(*keys, sa.func.count().label("touched"))
            .where(*measured_handoffs(scope, edge, seconds.is_not(None)))
            .group_by(*keys)
        )
    return summed(parts, ("touched",), by=("tier", "signal", "bucket"))


@cache
def _buckets_query(scope: Shape) -> sa.Select[Any]:
    # A nested loop over the pairs asked for: one index range of each, in the period.
    pairs = (
        sa.func.unnest(
            sa.bindparam("tiers", type_=sa.ARRAY(sa.Text)),
            sa.bindparam("buckets", type_=sa.ARRAY(sa.Integer)),
        )
        .table_valued("tier", "bucket")
        .render_derived(name="wanted")
    )
    seconds = handoffs.c.touch_seconds
    return (
        sa.select(
            pairs.c.tier,
            pairs.c.bucket,
            sa.func.array_agg(aggregate_order_by(handoffs.c.signal, seconds)),
            sa.func.array_agg(aggregate_order_by(seconds, seconds)),
        )
        .select_from(
            handoffs.join(
                pairs, sa.and_(handoffs.c.tier == pairs.c.tier, pairs.c.bucket == _BUCKET)
            )
        )
        .where(
            *measured_handoffs(
                scope, seconds.is_not(None), in_period(handoffs.c.handed_off_at, scope)
            )
        )
        .group_by(pairs.c.tier, pairs.c.bucket)
    )
