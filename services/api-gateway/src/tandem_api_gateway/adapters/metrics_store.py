"""The alignment metrics aggregated by PostgreSQL over indexed columns, never row by row.

Each query keeps the definitions of `domain/metrics.py` (which the shell used to apply to every
row in Python): half-open periods on the time each fact happened, tier 3 for facts without a
tier, the assignee's team for handoffs, deals always the sales team's, merged-away accounts and
deals folded into their survivors, deleted deals left out. Plans: coverage reads the accounts'
latest activity for open-ended periods, else probes `timeline_activity` (and `activity_days`
for rolled-up history) once per TAL account; handoffs read `handoffs_touch` and
`handoffs_verdicts` alone; deals are one pass over a small table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.adapters.tables import (
    accounts,
    activity_days,
    deal_counts,
    deal_days,
    deals,
    handoff_days,
    timeline,
)
from tandem_api_gateway.adapters.tables import handoff_measures as handoffs
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.domain.metric_aggregates import (
    PERCENTILES,
    TouchGroup,
    order_statistics,
    split_days,
    touch_times,
)
from tandem_api_gateway.domain.timeline import TimelineKind
from tandem_shared.events import Signal, Tier


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a scope makes of each query: the period's bounds as parameters (present or not),
    how it splits into whole days and edges, tier and team as they are. Each query is built
    once per shape (a few dozen at most)."""

    start: sa.BindParameter[datetime] | None
    end: sa.BindParameter[datetime] | None
    tier: Tier | None
    team: m.Team | None
    days: bool = False  # whether the per-day aggregates answer part of the period
    first_day: bool = False  # whether whole days start at a day (else from the beginning)
    end_day: bool = False  # whether they end before a day (else to the end)
    edges: int = 0  # spans of partial days the rows answer

    @classmethod
    def of(cls, scope: m.Scope) -> _Shape:
        start = _START if scope.start is not None else None
        split = split_days(scope.start, scope.end)
        return cls(
            start,
            _END if scope.end is not None else None,
            scope.tier,
            scope.team,
            days=split.days,
            first_day=split.first_day is not None,
            end_day=split.end_day is not None,
            edges=len(split.edges),
        )


_START = sa.bindparam("start", type_=sa.DateTime(timezone=True))
_END = sa.bindparam("end", type_=sa.DateTime(timezone=True))
_FIRST_DAY = sa.bindparam("first_day", type_=sa.Date)
_END_DAY = sa.bindparam("end_day", type_=sa.Date)
_EDGES = [
    tuple(sa.bindparam(f"edge{n}_{side}", type_=sa.DateTime(timezone=True)) for side in "se")
    for n in range(2)
]


def _params(scope: m.Scope) -> dict[str, Any]:
    split = split_days(scope.start, scope.end)
    bounds: dict[str, Any] = {
        "start": scope.start,
        "end": scope.end,
        "first_day": split.first_day,
        "end_day": split.end_day,
    }
    for n, (since, until) in enumerate(split.edges):
        bounds |= {f"edge{n}_s": since, f"edge{n}_e": until}
    return {name: value for name, value in bounds.items() if value is not None}


_ACTIVITY = {m.Team.SALES: TimelineKind.SALES_ACTIVITY, m.Team.MARKETING: TimelineKind.ENGAGEMENT}
_RESOLVED = ("met", "breached")
T = TypeVar("T")


async def alignment_report(
    sessions: async_sessionmaker[AsyncSession], scope: m.Scope
) -> m.AlignmentReport:
    """Compute every alignment metric for the scope in the database.

    The four queries are independent: each runs on a connection of its own, at the same time.
    """

    shape, params = _Shape.of(scope), _params(scope)

    async def on_own_connection(
        query: Callable[[AsyncSession, _Shape, dict[str, Any]], Awaitable[T]],
    ) -> T:
        async with sessions() as session:
            return await query(session, shape, params)

    (covered, tal), groups, sla, (in_tal, outside) = await asyncio.gather(
        on_own_connection(_coverage),
        on_own_connection(_cohort_groups),
        on_own_connection(_verdicts),
        on_own_connection(_pipeline),
    )
    met, resolved = (sum(getattr(g, name) for g in groups) for name in ("met", "resolved"))
    return m.assemble_report(
        scope=scope,
        coverage=covered / tal if tal else None,
        handoff_success=met / resolved if resolved else None,
        sla=sla,
        first_touch=touch_times(groups),
        in_tal=in_tal,
        outside_tal=outside,
    )


def _in_period(column: sa.ColumnElement[Any], scope: _Shape) -> sa.ColumnElement[bool]:
    # Scope.in_period: a missing time is in no period; an open bound accepts anything.
    conditions: list[sa.ColumnElement[bool]] = [column.is_not(None)]
    if scope.start is not None:
        conditions.append(column >= scope.start)
    if scope.end is not None:
        conditions.append(column < scope.end)
    return sa.and_(*conditions)


def _whole_days(day: sa.ColumnElement[Any], scope: _Shape) -> list[sa.ColumnElement[bool]]:
    conditions = []
    if scope.first_day:
        conditions.append(day >= _FIRST_DAY)
    if scope.end_day:
        conditions.append(day < _END_DAY)
    return conditions


def _on_edges(column: sa.ColumnElement[Any], scope: _Shape) -> sa.ColumnElement[bool]:
    # The partial days at the period's edges, half-open like the period.
    return sa.or_(*(sa.and_(column >= s, column < e) for s, e in _EDGES[: scope.edges]))


def _summed(parts: list[sa.Select[Any]], names: tuple[str, ...]) -> sa.Select[Any]:
    """Add up, column by column, what the per-day aggregates and the edges' rows counted."""
    union = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("parts")
    return sa.select(*(sa.func.coalesce(sa.func.sum(union.c[n]), 0).label(n) for n in names))


def _tier_of(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(column, Tier.T3.value)  # tier 3 covers accounts without a tier


# ---- joint account coverage ------------------------------------------------------------------


def _worked(keys: sa.ColumnElement[Any], team: m.Team, scope: _Shape) -> sa.ColumnElement[bool]:
    """True when the team worked one of `keys` in the period (raw entries, or rolled-up days)."""
    raw = sa.select(sa.literal(1)).where(
        timeline.c.account_key == sa.func.any(keys),
        timeline.c.kind == _ACTIVITY[team].value,
        _in_period(timeline.c.at, scope),
    )
    # A rolled-up day is known by its first and last activity: one of them in the period is
    # proof (docs/runbook.md, retention: what a day's roll-up cannot prove).
    days = sa.select(sa.literal(1)).where(
        activity_days.c.account_key == sa.func.any(keys),
        activity_days.c.team == team.value,
        sa.or_(
            _in_period(activity_days.c.first_at, scope), _in_period(activity_days.c.last_at, scope)
        ),
    )
    return sa.or_(raw.exists(), days.exists())


async def _coverage(
    session: AsyncSession, shape: _Shape, params: dict[str, Any]
) -> tuple[int, int]:
    """Return (TAL accounts worked as the scope asks, TAL accounts)."""
    tal, worked = (await session.execute(_coverage_query(shape), params)).one()
    return int(worked), int(tal)


@cache
def _coverage_query(scope: _Shape) -> sa.Select[int, int]:
    teams = [scope.team] if scope.team is not None else [m.Team.SALES, m.Team.MARKETING]
    query = _coverage_since(scope, teams) if scope.end is None else _coverage_between(scope, teams)
    if scope.tier is not None:
        query = query.where(_tier_of(accounts.c.tier) == scope.tier.value)
    return query


def _coverage_since(scope: _Shape, teams: list[m.Team]) -> sa.Select[int, int]:
    # Every named period is open-ended: activity in it exists exactly when the account's latest
    # activity falls in it, which the projections keep on the account (with the entry that
    # sets it), retention or not: one pass over the accounts, no timeline read.
    owner = sa.func.coalesce(accounts.c.merged_into, accounts.c.account_key)
    folded = (
        sa.select(
            owner.label("owner"),
            sa.func.max(accounts.c.last_sales_activity_at).label(m.Team.SALES.value),
            sa.func.max(accounts.c.last_marketing_activity_at).label(m.Team.MARKETING.value),
        )
        .group_by(owner)
        .subquery("folded")
    )
    covered = sa.and_(*(_in_period(folded.c[team.value], scope) for team in teams))
    return (
        sa.select(sa.func.count(), sa.func.count().filter(covered))
        .select_from(accounts.join(folded, folded.c.owner == accounts.c.account_key))
        .where(accounts.c.in_tal, accounts.c.merged_into.is_(None))
    )


def _coverage_between(scope: _Shape, teams: list[m.Team]) -> sa.Select[int, int]:
    # A period with an end: probe each TAL account's activity in it.
    folded = accounts.alias("folded")
    # An account's activity includes that of the accounts merged into it in the CRM.
    merged_in = (
        sa.select(folded.c.account_key)
        .where(folded.c.merged_into == accounts.c.account_key)
        .correlate(accounts)
        .scalar_subquery()
    )
    own = sa.func.array_prepend(accounts.c.account_key, sa.func.array(merged_in))
    keys = sa.select(own.label("keys")).correlate(accounts).lateral("own")
    covered = sa.and_(*(_worked(keys.c["keys"], team, scope) for team in teams))
    return (
        sa.select(sa.func.count(), sa.func.count().filter(covered))
        .select_from(accounts.join(keys, sa.true()))
        .where(accounts.c.in_tal, accounts.c.merged_into.is_(None))
    )


# ---- handoffs ----------------------------------------------------------------------------------


def _measured_handoffs(scope: _Shape, *conditions: sa.ColumnElement[bool]) -> list[Any]:
    # handoff_facts: handoffs known well enough to measure (tier, signal and start known).
    where = [handoffs.c.tier.is_not(None), handoffs.c.signal.is_not(None), *conditions]
    if scope.tier is not None:
        where.append(handoffs.c.tier == scope.tier.value)
    if scope.team is not None:
        where.append(handoffs.c.team == scope.team.value)
    return where


async def _cohort_groups(
    session: AsyncSession, shape: _Shape, params: dict[str, Any]
) -> list[TouchGroup]:
    """The period's cohort (handoffs made in it) per tier and per (tier, signal): its size,
    verdicts and touch times' order statistics; a signal without handoffs has no group.

    Counted from `handoff_days` for whole days and the rows for the edges' partial days; then,
    in the same snapshot (so the ranks fit the rows), each order statistic is read off an index
    in touch-time order from the nearer end: a percentile reads part of its group's index
    entries, no sort and no array of every value.
    """
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    groups: dict[tuple[str, str | None], dict[str, int]] = {}
    for row in (await session.execute(_cohort_query(shape), params)).mappings():
        for key in ((row["tier"], None), (row["tier"], row["signal"])):
            group = groups.setdefault(key, dict.fromkeys(_COHORT[2:], 0))
            for name in _COHORT[2:]:
                group[name] += int(row[name])
    picks = [
        (key, pct, order_statistics(group["touched"], pct))
        for key, group in groups.items()
        if group["touched"]
        for pct in PERCENTILES
    ]
    values: list[list[float]] = []
    if picks:
        query = sa.select(*(_pick(shape, key, groups[key]["touched"], r) for key, _, r in picks))
        values = list((await session.execute(query, params)).one())
    around: dict[tuple[str, str | None], dict[int, tuple[float | None, float | None]]] = {}
    for (key, pct, ranks), found in zip(picks, values, strict=True):
        around.setdefault(key, {})[pct] = _ends(ranks, groups[key]["touched"], found)
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


@cache
def _cohort_query(scope: _Shape) -> sa.Select[Any]:
    parts: list[sa.Select[Any]] = []
    if scope.days:
        days = handoff_days
        where = _whole_days(days.c.day, scope)
        if scope.tier is not None:
            where.append(days.c.tier == scope.tier.value)
        if scope.team is not None:
            where.append(days.c.team == scope.team.value)
        parts.append(sa.select(*(days.c[n] for n in _COHORT)).where(*where))
    if scope.edges:
        outcome = handoffs.c.sla_outcome
        parts.append(
            sa.select(
                handoffs.c.tier,
                handoffs.c.signal,
                sa.func.count().label("handoffs"),
                sa.func.count(handoffs.c.touch_seconds).label("touched"),
                sa.func.count().filter(outcome == "met").label("met"),
                sa.func.count().filter(outcome.in_(_RESOLVED)).label("resolved"),
            )
            .where(*_measured_handoffs(scope, _on_edges(handoffs.c.handed_off_at, scope)))
            .group_by(handoffs.c.tier, handoffs.c.signal)
        )
    union = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("parts")
    totals = (sa.func.sum(union.c[n]).label(n) for n in _COHORT[2:])
    return sa.select(union.c.tier, union.c.signal, *totals).group_by(union.c.tier, union.c.signal)


def _nearer_end(touched: int, ranks: tuple[int, int]) -> bool:
    """Return True when the ranks are nearer the lowest touch time than the highest."""
    return ranks[1] < touched - 1 - ranks[0]


def _pick(
    scope: _Shape, key: tuple[str, str | None], touched: int, ranks: tuple[int, int]
) -> sa.ColumnElement[Any]:
    """The order statistics at `ranks` of a group's touch times, as an array: read upwards
    from the lowest value, or downwards from the highest when that end is nearer."""
    tier, signal = key
    seconds = handoffs.c.touch_seconds
    where = [handoffs.c.tier == tier, seconds.is_not(None)]
    if signal is not None:
        where.append(handoffs.c.signal == signal)
    low, high = ranks
    upwards = _nearer_end(touched, ranks)
    query = (
        sa.select(seconds)
        .where(*_measured_handoffs(scope, _in_period(handoffs.c.handed_off_at, scope), *where))
        .order_by(seconds if upwards else seconds.desc())
        .offset(low if upwards else touched - 1 - high)
        .limit(high - low + 1)
    )
    return sa.func.array(query.scalar_subquery())


def _ends(
    ranks: tuple[int, int], touched: int, found: list[float]
) -> tuple[float | None, float | None]:
    low, high = ranks
    if len(found) != high - low + 1:
        raise RuntimeError(f"expected the touch times at ranks {ranks} of {touched}: {found}")
    ordered = found if _nearer_end(touched, ranks) else found[::-1]
    return ordered[0], ordered[-1]


async def _verdicts(
    session: AsyncSession, shape: _Shape, params: dict[str, Any]
) -> m.SlaCompliance:
    """Count the SLA verdicts reached in the period and the breaches still without a touch:
    whole days from `handoff_days`, the edges' partial days from `handoffs_verdicts`."""
    row = (await session.execute(_verdicts_query(shape), params)).one()
    met, breaches, open_breaches = (int(n) for n in row)
    return m.SlaCompliance(met=met, breached=breaches, open_breaches=open_breaches)


_VERDICTS = ("met", "breached", "open_breaches")


@cache
def _verdicts_query(scope: _Shape) -> sa.Select[Any]:
    parts: list[sa.Select[Any]] = []
    if scope.days:
        days = handoff_days
        where = _whole_days(days.c.day, scope)
        if scope.tier is not None:
            where.append(days.c.tier == scope.tier.value)
        if scope.team is not None:
            where.append(days.c.team == scope.team.value)
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
                *_measured_handoffs(
                    scope,
                    handoffs.c.sla_outcome.in_(_RESOLVED),
                    handoffs.c.outcome_at.is_not(None),
                    _on_edges(handoffs.c.outcome_at, scope),
                )
            )
        )
    return _summed(parts, _VERDICTS)


# ---- pipeline ----------------------------------------------------------------------------------


async def _pipeline(
    session: AsyncSession, shape: _Shape, params: dict[str, Any]
) -> tuple[m.PipelineSegment, m.PipelineSegment]:
    """Return pipeline and win rate inside the TAL and outside it."""
    found: dict[bool, m.PipelineSegment] = {}
    # Deals count for the sales team (their owners'): a marketing scope has none.
    if shape.team in (None, m.Team.SALES):
        rows = await session.execute(_segments_query(shape), params)
        found = {
            bool(flag): m.PipelineSegment(
                bool(flag), int(o), float(o_sum), int(c), int(w), float(w_sum)
            )
            for flag, o, o_sum, c, w, w_sum in rows
        }
    empty = {flag: m.PipelineSegment(flag, 0, 0.0, 0, 0, 0.0) for flag in (True, False)}
    return found.get(True, empty[True]), found.get(False, empty[False])


_SEGMENT = ("opened", "opened_amount", "closed", "won", "won_amount")


@cache
def _segments_query(scope: _Shape) -> sa.Select[Any]:
    # Whole days from `deal_days`; the edges' partial days from what each deal was counted as
    # (`deal_counts`: its account's TAL membership and tier, its amount), at its exact times.
    parts: list[sa.Select[Any]] = []
    if scope.days:
        days = deal_days
        where = _whole_days(days.c.day, scope)
        if scope.tier is not None:
            where.append(days.c.tier == scope.tier.value)
        parts.append(sa.select(days.c.in_tal, *(days.c[n] for n in _SEGMENT)).where(*where))
    if scope.edges:
        counted = deal_counts
        opened = sa.and_(counted.c.opened_on.is_not(None), _on_edges(deals.c.created_at, scope))
        closed = sa.and_(counted.c.closed_on.is_not(None), _on_edges(deals.c.closed_at, scope))
        won = sa.and_(closed, counted.c.won)
        edge = (
            sa.select(
                counted.c.in_tal,
                sa.func.count().filter(opened).label("opened"),
                sa.func.sum(counted.c.amount).filter(opened).label("opened_amount"),
                sa.func.count().filter(closed).label("closed"),
                sa.func.count().filter(won).label("won"),
                sa.func.sum(counted.c.amount).filter(won).label("won_amount"),
            )
            .select_from(counted.join(deals, deals.c.deal_id == counted.c.deal_id))
            .where(sa.or_(opened, closed))
            .group_by(counted.c.in_tal)
        )
        if scope.tier is not None:
            edge = edge.where(counted.c.tier == scope.tier.value)
        parts.append(edge)
    union = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("parts")
    totals = (sa.func.coalesce(sa.func.sum(union.c[n]), 0) for n in _SEGMENT)
    return sa.select(union.c.in_tal, *totals).group_by(union.c.in_tal)
