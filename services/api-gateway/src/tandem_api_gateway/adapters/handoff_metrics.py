"""The handoff metrics from the per-day aggregates and the rows: the period's cohort (size,
verdicts, order statistics of its touch times) and the SLA verdicts reached in it."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import touch_percentiles
from tandem_api_gateway.adapters.metric_scope import (
    RESOLVED,
    Shape,
    measured_handoffs,
    on_edges,
    summed,
    whole_days,
)
from tandem_api_gateway.adapters.tables import handoff_days
from tandem_api_gateway.adapters.tables import handoff_measures as handoffs
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.domain.metric_aggregates import PERCENTILES, TouchGroup
from tandem_shared.events import Signal, Tier


async def cohort_groups(
    session: AsyncSession, shape: Shape, params: dict[str, Any]
) -> list[TouchGroup]:
    """The period's cohort (handoffs made in it) per tier and per (tier, signal): its size,
    verdicts and touch times' order statistics; a signal without handoffs has no group.

    Counted from `handoff_days` for whole days and the rows for the edges' partial days; the
    order statistics in the same snapshot (so the ranks fit the counts) by touch_percentiles.
    """
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    groups: _Groups = {}
    for row in (await session.execute(_cohort_query(shape), params)).mappings():
        for key in ((row["tier"], None), (row["tier"], row["signal"])):
            group = groups.setdefault(key, dict.fromkeys(_COHORT[2:], 0))
            for name in _COHORT[2:]:
                group[name] += int(row[name])
    touched = {key: group["touched"] for key, group in groups.items()}
    around = await touch_percentiles.around(session, shape, params, touched)
    return [
        TouchGroup(
            tier=Tier(tier),
            signal=None if signal is None else Signal(signal),
            handoffs=group["handoffs"],
            touched=group["touched"],
            around=around.get((tier, signal), dict.fromkeys(PERCENTILES, (None, None))),
            met=group["met"] if signal is None else 0,
            resolved=group["resolved"] if signal is None else 0,
        )
        for (tier, signal), group in groups.items()
        if group["handoffs"]
    ]


_COHORT = ("tier", "signal", "handoffs", "touched", "met", "resolved")
_Groups = dict[tuple[str, str | None], dict[str, int]]


@cache
def _cohort_query(scope: Shape) -> sa.Select[Any]:
    parts: list[sa.Select[Any]] = []
    if scope.days:
        days = handoff_days
        parts.append(sa.select(*(days.c[n] for n in _COHORT)).where(*whole_days(days, scope)))
    if scope.edges:
        outcome = handoffs.c.sla_outcome
        parts.append(
            sa.select(
                handoffs.c.tier,
                handoffs.c.signal,
                sa.func.count().label("handoffs"),
                sa.func.count(handoffs.c.touch_seconds).label("touched"),
                sa.func.count().filter(outcome == "met").label("met"),
                sa.func.count().filter(outcome.in_(RESOLVED)).label("resolved"),
            )
            .where(*measured_handoffs(scope, on_edges(handoffs.c.handed_off_at, scope)))
            .group_by(handoffs.c.tier, handoffs.c.signal)
        )
    return summed(parts, _COHORT[2:], by=_COHORT[:2])


async def verdicts(session: AsyncSession, shape: Shape, params: dict[str, Any]) -> m.SlaCompliance:
    """Count the SLA verdicts reached in the period and the breaches still without a touch:
    whole days from `handoff_days`, the edges' partial days from `handoffs_verdicts`."""
    row = (await session.execute(_verdicts_query(shape), params)).one()
    met, breaches, open_breaches = (int(n) for n in row)
    return m.SlaCompliance(met=met, breached=breaches, open_breaches=open_breaches)


_VERDICTS = ("met", "breached", "open_breaches")


@cache
def _verdicts_query(scope: Shape) -> sa.Select[Any]:
    parts: list[sa.Select[Any]] = []
    if scope.days:
        days = handoff_days
        where = whole_days(days, scope)
        columns = (days.c.verdicts_met, days.c.verdicts_breached, days.c.open_breaches)
        parts.append(
            sa.select(*(c.label(n) for c, n in zip(columns, _VERDICTS, strict=True))).where(*where)
        )
    if scope.edges:
        breached = handoffs.c.sla_outcome == "breached"
        counts: tuple[sa.ColumnElement[Any], ...] = (
            sa.func.count().filter(handoffs.c.sla_outcome == "met"),
            sa.func.count().filter(breached),
            sa.func.count().filter(breached, handoffs.c.first_touch_at.is_(None)),
        )
        parts.append(
            sa.select(*(c.label(n) for c, n in zip(counts, _VERDICTS, strict=True))).where(
                *measured_handoffs(
                    scope,
                    handoffs.c.sla_outcome.in_(RESOLVED),
                    handoffs.c.outcome_at.is_not(None),
                    on_edges(handoffs.c.outcome_at, scope),
                )
            )
        )
    return summed(parts, _VERDICTS)
