"""The alignment metrics aggregated by PostgreSQL over indexed columns, never row by row.

Each query keeps the definitions of `domain/metrics.py` (which the shell used to apply to every
row in Python): half-open periods on the time each fact happened, tier 3 for facts without a
tier, the assignee's team for handoffs, deals always the sales team's, merged-away accounts and
deals folded into their survivors, deleted deals left out. Plans: coverage reads the accounts'
latest activity for open-ended periods, else probes `timeline_activity` (and `activity_days`
for rolled-up history) once per TAL account; handoffs (handoff_metrics.py) and deals read the
per-day aggregates the triggers of migration 0010 keep (`handoff_days`, `deal_days`) for the
period's whole UTC days and the rows for the partial days at its edges (metric_scope.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.adapters import handoff_metrics
from tandem_api_gateway.adapters.metric_scope import (
    Shape,
    in_period,
    on_edges,
    params_of,
    summed,
    whole_days,
)
from tandem_api_gateway.adapters.tables import (
    accounts,
    activity_days,
    deal_counts,
    deal_days,
    deals,
    timeline,
)
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.domain.metric_aggregates import (
    touch_times,
)
from tandem_api_gateway.domain.timeline import TimelineKind
from tandem_shared.events import Tier

_ACTIVITY = {m.Team.SALES: TimelineKind.SALES_ACTIVITY, m.Team.MARKETING: TimelineKind.ENGAGEMENT}
T = TypeVar("T")


async def alignment_report(
    sessions: async_sessionmaker[AsyncSession], scope: m.Scope
) -> m.AlignmentReport:
    """Compute every alignment metric for the scope in the database.

    The four queries are independent: each runs on a connection of its own, at the same time.
    """

    shape, params = Shape.of(scope), params_of(scope)

    async def on_own_connection(
        query: Callable[[AsyncSession, Shape, dict[str, Any]], Awaitable[T]],
    ) -> T:
        async with sessions() as session:
            return await query(session, shape, params)

    (covered, tal), groups, sla, (in_tal, outside) = await asyncio.gather(
        on_own_connection(_coverage),
        on_own_connection(handoff_metrics.cohort_groups),
        on_own_connection(handoff_metrics.verdicts),
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


def _tier_of(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(column, Tier.T3.value)  # tier 3 covers accounts without a tier


# ---- joint account coverage ------------------------------------------------------------------


def _worked(keys: sa.ColumnElement[Any], team: m.Team, scope: Shape) -> sa.ColumnElement[bool]:
    """True when the team worked one of `keys` in the period (raw entries, or rolled-up days)."""
    raw = sa.select(sa.literal(1)).where(
        timeline.c.account_key == sa.func.any(keys),
        timeline.c.kind == _ACTIVITY[team].value,
        in_period(timeline.c.at, scope),
    )
    # A rolled-up day is known by its first and last activity: one of them in the period is
    # proof (docs/runbook.md, retention: what a day's roll-up cannot prove).
    days = sa.select(sa.literal(1)).where(
        activity_days.c.account_key == sa.func.any(keys),
        activity_days.c.team == team.value,
        sa.or_(
            in_period(activity_days.c.first_at, scope), in_period(activity_days.c.last_at, scope)
        ),
    )
    return sa.or_(raw.exists(), days.exists())


async def _coverage(session: AsyncSession, shape: Shape, params: dict[str, Any]) -> tuple[int, int]:
    """Return (TAL accounts worked as the scope asks, TAL accounts)."""
    tal, worked = (await session.execute(_coverage_query(shape), params)).one()
    return int(worked), int(tal)


@cache
def _coverage_query(scope: Shape) -> sa.Select[int, int]:
    teams = [scope.team] if scope.team is not None else [m.Team.SALES, m.Team.MARKETING]
    query = _coverage_since(scope, teams) if scope.end is None else _coverage_between(scope, teams)
    if scope.tier is not None:
        query = query.where(_tier_of(accounts.c.tier) == scope.tier.value)
    return query


def _coverage_since(scope: Shape, teams: list[m.Team]) -> sa.Select[int, int]:
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
    covered = sa.and_(*(in_period(folded.c[team.value], scope) for team in teams))
    return (
        sa.select(sa.func.count(), sa.func.count().filter(covered))
        .select_from(accounts.join(folded, folded.c.owner == accounts.c.account_key))
        .where(accounts.c.in_tal, accounts.c.merged_into.is_(None))
    )


def _coverage_between(scope: Shape, teams: list[m.Team]) -> sa.Select[int, int]:
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


# ---- pipeline ----------------------------------------------------------------------------------


async def _pipeline(
    session: AsyncSession, shape: Shape, params: dict[str, Any]
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
def _segments_query(scope: Shape) -> sa.Select[Any]:
    # Whole days from `deal_days`; the edges' partial days from what each deal was counted as
    # (`deal_counts`: its account's TAL membership and tier, its amount), at its exact times.
    parts: list[sa.Select[Any]] = []
    if scope.days:
        days = deal_days
        parts.append(
            sa.select(days.c.in_tal, *(days.c[n] for n in _SEGMENT)).where(*whole_days(days, scope))
        )
    if scope.edges:
        counted = deal_counts
        opened = sa.and_(counted.c.opened_on.is_not(None), on_edges(deals.c.created_at, scope))
        closed = sa.and_(counted.c.closed_on.is_not(None), on_edges(deals.c.closed_at, scope))
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
    return summed(parts, _SEGMENT, by=("in_tal",))
