"""Queries of the read models behind the REST API (keyset pagination, authorization filters)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.tables import (
    accounts,
    alert_channels,
    alert_deliveries,
    alerts,
    deals,
    handoffs,
    tal_entries,
    timeline,
)
from tandem_api_gateway.domain.timeline import TimelineKind

Row = dict[str, Any]


async def _rows(session: AsyncSession, query: sa.Select[Any]) -> list[Row]:
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def _one(session: AsyncSession, query: sa.Select[Any]) -> Row | None:
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


# ---- accounts --------------------------------------------------------------------------------


async def list_accounts(
    session: AsyncSession,
    *,
    tier: str | None,
    in_tal: bool | None,
    after: str | None,
    limit: int,
) -> list[Row]:
    """Return up to limit+1 accounts ordered by key, after the cursor's key."""
    query = (
        _with_counts()
        .where(accounts.c.merged_into.is_(None))  # merged away in the CRM: the winner stands
        .order_by(accounts.c.account_key)
        .limit(limit + 1)
    )
    if tier is not None:
        query = query.where(accounts.c.tier == tier)
    if in_tal is not None:
        query = query.where(accounts.c.in_tal == in_tal)
    if after is not None:
        query = query.where(accounts.c.account_key > after)
    return await _rows(session, query)


def _with_counts() -> sa.Select[Any]:
    # Open handoffs, and where the joint TAL decision stands (a record of the gateway itself).
    open_handoffs = (
        sa.select(sa.func.count())
        .where(handoffs.c.account_key == accounts.c.account_key)
        .where(handoffs.c.sla_outcome == "running")
        .scalar_subquery()
    )
    workflow = (
        sa.select(tal_entries.c.status)
        .where(tal_entries.c.account_key == accounts.c.account_key)
        .scalar_subquery()
    )
    return sa.select(
        accounts, open_handoffs.label("open_handoffs"), workflow.label("tal_workflow_status")
    )


async def get_account(session: AsyncSession, account_key: str) -> Row | None:
    """Return one account with its open handoffs and TAL workflow status."""
    return await _one(session, _with_counts().where(accounts.c.account_key == account_key))


def _timeline_visible_to(person_id: str | None) -> sa.ColumnElement[bool]:
    # A rep sees the account's activity, but handoff, SLA and alert entries only of the
    # handoffs and alerts they may read: the rest is other reps' work (see domain/authz.py).
    if person_id is None:
        return sa.true()
    handoff_kinds = (TimelineKind.ROUTING.value, TimelineKind.SLA.value)
    # Scalar lookups by primary key (null when missing: not visible), not EXISTS: PostgreSQL
    # would turn an EXISTS into a hash of every handoff and alert the rep may read, built
    # before the first entry of the page is read.
    own_handoff = (
        sa.select(_handoffs_visible_to(person_id))
        .where(handoffs.c.handoff_id == timeline.c.data["handoff_id"].astext)
        .scalar_subquery()
    )
    own_alert = (
        sa.select(_alerts_visible_to(person_id))
        .where(alerts.c.alert_id == timeline.c.entry_id)
        .scalar_subquery()
    )
    return sa.or_(
        timeline.c.kind.not_in([*handoff_kinds, TimelineKind.ALERT.value]),
        sa.and_(timeline.c.kind.in_(handoff_kinds), own_handoff),
        sa.and_(timeline.c.kind == TimelineKind.ALERT.value, own_alert),
    )


async def list_timeline(
    session: AsyncSession,
    *,
    account_key: str,
    visible_to: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Row]:
    """Return up to limit+1 timeline entries of an account, newest first (a rep: see above)."""
    order = (timeline.c.at, timeline.c.rank, timeline.c.entry_id)
    query = (
        sa.select(timeline)
        .where(timeline.c.account_key == account_key, _timeline_visible_to(visible_to))
        .order_by(*(c.desc() for c in order))
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(sa.tuple_(*order) < sa.tuple_(*after))
    return await _rows(session, query)


# ---- handoffs ----------------------------------------------------------------------------------


def _handoffs_visible_to(person_id: str | None) -> sa.ColumnElement[bool]:
    if person_id is None:
        return sa.true()
    return sa.or_(
        handoffs.c.assignee_id == person_id, handoffs.c.notified_ids.contains([person_id])
    )


async def list_handoffs(
    session: AsyncSession,
    *,
    visible_to: str | None,
    outcome: str | None = None,
    tier: str | None = None,
    signal: str | None = None,
    assignee: str | None = None,
    account_key: str | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int,
) -> list[Row]:
    """Return up to limit+1 handoffs, newest first; `visible_to` restricts a rep to theirs.

    Each filter has an index on (filter, sort_at, handoff_id): a page reads its own rows.
    """
    order = (handoffs.c.sort_at, handoffs.c.handoff_id)
    query = (
        sa.select(handoffs)
        .where(_handoffs_visible_to(visible_to))
        .order_by(*(c.desc() for c in order))
        .limit(limit + 1)
    )
    for column, value in (
        (handoffs.c.sla_outcome, outcome),
        (handoffs.c.tier, tier),
        (handoffs.c.signal, signal),
        (handoffs.c.assignee_id, assignee),
        (handoffs.c.account_key, account_key),
    ):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(sa.tuple_(*order) < sa.tuple_(*after))
    return await _rows(session, query)


async def get_handoff(session: AsyncSession, handoff_id: str) -> Row | None:
    """Return one handoff."""
    return await _one(session, sa.select(handoffs).where(handoffs.c.handoff_id == handoff_id))


# ---- alerts ------------------------------------------------------------------------------------


def _alerts_visible_to(person_id: str | None) -> sa.ColumnElement[bool]:
    if person_id is None:
        return sa.true()
    return alerts.c.recipient_ids.contains([person_id])


async def list_alerts(
    session: AsyncSession,
    *,
    visible_to: str | None,
    kind: str | None = None,
    channel: str | None = None,
    account_key: str | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int,
) -> list[Row]:
    """Return up to limit+1 alerts, newest first; `visible_to` restricts a rep to theirs.

    By channel, the page reads `alert_channels` (the alerts delivered on each channel, in the
    same order) and joins their alerts.
    """
    order: tuple[sa.ColumnElement[Any], ...] = (alerts.c.sort_at, alerts.c.alert_id)
    query = sa.select(alerts).where(_alerts_visible_to(visible_to))
    if channel is not None:
        listed = alert_channels
        order = (listed.c.sort_at, listed.c.alert_id)
        query = query.join(
            listed, sa.and_(listed.c.alert_id == alerts.c.alert_id, listed.c.channel == channel)
        )
    query = query.order_by(*(c.desc() for c in order)).limit(limit + 1)
    if kind is not None:
        query = query.where(alerts.c.kind == kind)
    if account_key is not None:
        query = query.where(alerts.c.account_key == account_key)
    if after is not None:
        query = query.where(sa.tuple_(*order) < sa.tuple_(*after))
    return await _rows(session, query)


async def get_alert(session: AsyncSession, alert_id: str) -> Row | None:
    """Return one alert."""
    return await _one(session, sa.select(alerts).where(alerts.c.alert_id == alert_id))


async def deliveries_of(session: AsyncSession, alert_ids: Sequence[str]) -> dict[str, list[Row]]:
    """Return the deliveries of the given alerts, by alert id."""
    if not alert_ids:
        return {}
    query = (
        sa.select(alert_deliveries)
        .where(alert_deliveries.c.alert_id.in_(list(alert_ids)))
        .order_by(alert_deliveries.c.recipient_id, alert_deliveries.c.channel)
    )
    found: dict[str, list[Row]] = {}
    for row in await _rows(session, query):
        found.setdefault(row["alert_id"], []).append(row)
    return found


# ---- metrics facts ---------------------------------------------------------------------------


async def account_facts(session: AsyncSession) -> list[Row]:
    """Return accounts with the times of their sales and marketing activity."""
    # An account's activity includes that of the accounts merged into it in the CRM.
    folded = accounts.alias("folded")
    own_keys = (
        sa.select(folded.c.account_key)
        .where(
            sa.or_(
                folded.c.account_key == accounts.c.account_key,
                folded.c.merged_into == accounts.c.account_key,
            )
        )
        .correlate(accounts)  # nested two deep: not correlated on its own
    )

    def times(kind: TimelineKind) -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.coalesce(sa.func.array_agg(timeline.c.at), sa.text("'{}'")))
            .where(timeline.c.account_key.in_(own_keys), timeline.c.kind == kind.value)
            .scalar_subquery()
        )

    query = sa.select(
        accounts.c.account_key,
        accounts.c.tier,
        accounts.c.in_tal,
        times(TimelineKind.SALES_ACTIVITY).label("sales_activity_at"),
        times(TimelineKind.ENGAGEMENT).label("marketing_activity_at"),
    ).where(accounts.c.merged_into.is_(None))
    return await _rows(session, query)


async def handoff_facts(session: AsyncSession) -> list[Row]:
    """Return handoffs known well enough to measure (tier, signal and start known)."""
    query = sa.select(handoffs).where(handoffs.c.tier.is_not(None), handoffs.c.signal.is_not(None))
    return await _rows(session, query)


async def deal_facts(session: AsyncSession) -> list[Row]:
    """Return deals with their account's tier and TAL membership (the survivor's, if merged)."""
    survivor = accounts.alias("survivor")
    query = sa.select(
        deals,
        sa.func.coalesce(survivor.c.tier, accounts.c.tier).label("tier"),
        sa.func.coalesce(survivor.c.in_tal, accounts.c.in_tal).label("in_tal"),
    ).select_from(
        deals.outerjoin(accounts, accounts.c.account_key == deals.c.account_key).outerjoin(
            survivor, survivor.c.account_key == accounts.c.merged_into
        )
    )
    # A merged deal counts once (the winner); a deleted one not at all: it was neither won nor lost.
    query = query.where(deals.c.merged_into.is_(None), deals.c.deleted_at.is_(None))
    return await _rows(session, query)
