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
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.adapters.tables import accounts, activity_days, deals, timeline
from tandem_api_gateway.adapters.tables import handoff_measures as handoffs
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.domain.metric_aggregates import PERCENTILES, TouchGroup, touch_times
from tandem_api_gateway.domain.timeline import TimelineKind
from tandem_shared.events import Signal, Tier


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a scope makes of each query: the period's bounds as parameters (present or not),
    tier and team as they are. Each query is built once per shape (a few dozen at most)."""

    start: sa.BindParameter[datetime] | None
    end: sa.BindParameter[datetime] | None
    tier: Tier | None
    team: m.Team | None

    @classmethod
    def of(cls, scope: m.Scope) -> _Shape:
        start = _START if scope.start is not None else None
        return cls(start, _END if scope.end is not None else None, scope.tier, scope.team)


_START = sa.bindparam("start", type_=sa.DateTime(timezone=True))
_END = sa.bindparam("end", type_=sa.DateTime(timezone=True))


def _params(scope: m.Scope) -> dict[str, datetime]:
    bounds = {"start": scope.start, "end": scope.end}
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
        query: Callable[[AsyncSession, _Shape, dict[str, datetime]], Awaitable[T]],
    ) -> T:
        async with sessions() as session:
            return await query(session, shape, params)

    (covered, tal), groups, sla, (in_tal, outside) = await asyncio.gather(
        on_own_connection(_coverage),
        on_own_connection(_cohort_groups),
        on_own_connection(_verdicts),
        on_own_connection(_pipeline),
    )
    met, resolved = (sum(g[name] for g in groups) for name in ("met", "resolved"))
    return m.assemble_report(
        scope=scope,
        coverage=covered / tal if tal else None,
        handoff_success=met / resolved if resolved else None,
        sla=sla,
        first_touch=touch_times(_touch_group(g) for g in groups),
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
    session: AsyncSession, shape: _Shape, params: dict[str, datetime]
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
    session: AsyncSession, shape: _Shape, params: dict[str, datetime]
) -> list[dict[str, Any]]:
    """The period's cohort (handoffs made in it) per tier and per (tier, signal): its size,
    its verdicts (per tier) and the two order statistics around each percentile of its touch
    times; a signal without handoffs in the period has no group.

    One pass over `handoffs_touch`, which holds the cohort's columns in (tier, touch time)
    order: every group's touch times come off it sorted, a signal's by a filter, none sorted.
    """
    found = []
    for row in (await session.execute(_cohort_query(shape), params)).mappings():
        for name in _GROUPS:
            if not row[f"handoffs{name}"]:
                continue
            sides = [f"p{pct}_{side}" for pct in PERCENTILES for side in ("low", "high")]
            found.append(
                {
                    "tier": row["tier"],
                    "signal": _GROUPS[name],
                    "met": row["met"] if not name else 0,
                    "resolved": row["resolved"] if not name else 0,
                    **{k: row[f"{k}{name}"] for k in ("handoffs", "touched", *sides)},
                }
            )
    return found


# The groups of a tier's cohort, by the suffix of their columns: the whole tier, each signal.
_GROUPS: dict[str, Signal | None] = {"": None, **{f"_{s.name.lower()}": s for s in Signal}}


@cache
def _cohort_query(scope: _Shape) -> sa.Select[Any]:
    seconds, outcome = handoffs.c.touch_seconds, handoffs.c.sla_outcome
    groups = {
        name: sa.true() if signal is None else handoffs.c.signal == signal.value
        for name, signal in _GROUPS.items()
    }
    columns: list[sa.ColumnElement[Any]] = [
        handoffs.c.tier,
        sa.func.count().filter(outcome == "met").label("met"),
        sa.func.count().filter(outcome.in_(_RESOLVED)).label("resolved"),
    ]
    for name, member in groups.items():
        columns += [
            sa.func.count().filter(member).label(f"handoffs{name}"),
            sa.func.count(seconds).filter(member).label(f"touched{name}"),
            sa.func.array_agg(aggregate_order_by(seconds, seconds))
            .filter(member, seconds.is_not(None))
            .label(f"sorted{name}"),
        ]
    grouped = (
        sa.select(*columns)
        .where(*_measured_handoffs(scope, _in_period(handoffs.c.handed_off_at, scope)))
        .group_by(handoffs.c.tier)
        .subquery("grouped")
    )
    # Only the order statistics each percentile needs leave the database.
    picked: list[sa.ColumnElement[Any]] = [grouped.c[n] for n in ("tier", "met", "resolved")]
    for name in groups:
        touched = grouped.c[f"touched{name}"]
        picked += [grouped.c[f"handoffs{name}"], touched]
        for pct in PERCENTILES:
            low = pct * (touched - 1) // 100  # metric_aggregates.order_statistics
            for offset, side in ((1, "low"), (2, "high")):
                rank = grouped.c[f"sorted{name}"][low + offset]
                picked.append(rank.label(f"p{pct}_{side}{name}"))
    return sa.select(*picked)


def _touch_group(row: dict[str, Any]) -> TouchGroup:
    return TouchGroup(
        tier=Tier(row["tier"]),
        signal=row["signal"],
        handoffs=row["handoffs"],
        touched=row["touched"],
        around={pct: (row[f"p{pct}_low"], row[f"p{pct}_high"]) for pct in PERCENTILES},
    )


async def _verdicts(
    session: AsyncSession, shape: _Shape, params: dict[str, datetime]
) -> m.SlaCompliance:
    """Count the SLA verdicts reached in the period and the breaches still without a touch,
    from `handoffs_verdicts` alone."""
    met, breaches, open_breaches = (await session.execute(_verdicts_query(shape), params)).one()
    return m.SlaCompliance(met=met, breached=breaches, open_breaches=open_breaches)


@cache
def _verdicts_query(scope: _Shape) -> sa.Select[int, int, int]:
    breached = handoffs.c.sla_outcome == "breached"
    query = sa.select(
        sa.func.count().filter(handoffs.c.sla_outcome == "met"),
        sa.func.count().filter(breached),
        sa.func.count().filter(breached, handoffs.c.first_touch_at.is_(None)),
    ).where(
        *_measured_handoffs(
            scope, handoffs.c.sla_outcome.in_(_RESOLVED), _in_period(handoffs.c.outcome_at, scope)
        )
    )
    return query


# ---- pipeline ----------------------------------------------------------------------------------


async def _pipeline(
    session: AsyncSession, shape: _Shape, params: dict[str, datetime]
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


@cache
def _segments_query(scope: _Shape) -> sa.Select[Any]:
    opened = sa.and_(sa.not_(deals.c.is_closed), _in_period(deals.c.created_at, scope))
    closed = sa.and_(deals.c.is_closed, _in_period(deals.c.closed_at, scope))
    won = sa.and_(closed, deals.c.is_won)
    # Summed exactly (numeric), whatever order the rows come in; no amount counts as 0.
    amount = sa.cast(sa.func.coalesce(deals.c.amount, 0), sa.Numeric)
    # Per account first (a pass over the deals alone), then by the account's (or its
    # survivor's) TAL membership and tier: the joins see accounts, not deals.
    per_account = (
        sa.select(
            deals.c.account_key,
            sa.func.count().filter(opened).label("opened"),
            sa.func.sum(amount).filter(opened).label("opened_amount"),
            sa.func.count().filter(closed).label("closed"),
            sa.func.count().filter(won).label("won"),
            sa.func.sum(amount).filter(won).label("won_amount"),
        )
        .where(deals.c.merged_into.is_(None), deals.c.deleted_at.is_(None))
        .group_by(deals.c.account_key)
        .subquery("per_account")
    )
    survivor = accounts.alias("survivor")
    in_tal = sa.func.coalesce(survivor.c.in_tal, accounts.c.in_tal, False)
    totals = [
        sa.func.coalesce(sa.func.sum(per_account.c[name]), 0)
        for name in ("opened", "opened_amount", "closed", "won", "won_amount")
    ]
    query = (
        sa.select(in_tal, *totals)
        .select_from(
            per_account.outerjoin(
                accounts, accounts.c.account_key == per_account.c.account_key
            ).outerjoin(survivor, survivor.c.account_key == accounts.c.merged_into)
        )
        .group_by(in_tal)
    )
    if scope.tier is not None:
        tier = sa.func.coalesce(survivor.c.tier, accounts.c.tier, Tier.T3.value)
        query = query.where(tier == scope.tier.value)
    return query
