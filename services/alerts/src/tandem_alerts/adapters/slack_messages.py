"""The Slack messages alerts posted about a handoff: what an action on it updates in place."""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.repository import SENT
from tandem_alerts.adapters.tables import alerts, deliveries
from tandem_shared.events import AlertRequested, DeliveryChannel


@dataclass(frozen=True)
class PostedMessage:
    """One posted message: where it is, who it was for, and the alerts it shows (a coalesced
    summary shows several, of several handoffs)."""

    channel: str
    ts: str
    recipient_id: str
    on_behalf_of: str | None
    alerts: tuple[AlertRequested, ...]


_COLUMNS = (
    deliveries.c.recipient_id,
    deliveries.c.on_behalf_of,
    sa.func.coalesce(deliveries.c.slack_channel, deliveries.c.destination).label("conversation"),
    deliveries.c.slack_ts,
    deliveries.c.coalesced,
    alerts.c.alert_id,
    alerts.c.payload,
)


def _posted() -> sa.Select[tuple[object, ...]]:
    return (
        sa.select(*_COLUMNS)
        .select_from(deliveries.join(alerts, alerts.c.alert_id == deliveries.c.alert_id))
        .where(
            deliveries.c.channel == DeliveryChannel.SLACK.value,
            deliveries.c.status == SENT,
            deliveries.c.slack_ts.isnot(None),
        )
    )


async def handoff_messages(session: AsyncSession, handoff_id: str) -> list[PostedMessage]:
    """Return every Slack message posted about a handoff, oldest first (digests have no ts)."""
    rows = list(await session.execute(_posted().where(alerts.c.handoff_id == handoff_id)))
    summaries = {r.slack_ts for r in rows if r.coalesced}
    if summaries:  # a summary is re-rendered whole: the other alerts it shows too
        rows += list(
            await session.execute(
                _posted().where(deliveries.c.coalesced, deliveries.c.slack_ts.in_(summaries))
            )
        )
    found: dict[tuple[str, str], PostedMessage] = {}
    seen: set[tuple[str, str, str]] = set()
    for row in sorted(rows, key=lambda r: r.slack_ts):
        key = (row.conversation, row.slack_ts)
        if (*key, row.alert_id) in seen:
            continue
        seen.add((*key, row.alert_id))
        alert = AlertRequested.model_validate(row.payload)
        message = found.get(key)
        shown = (*message.alerts, alert) if message is not None else (alert,)
        found[key] = PostedMessage(*key, row.recipient_id, row.on_behalf_of, shown)
    return [
        replace(m, alerts=tuple(sorted(m.alerts, key=lambda a: a.requested_at)))
        for m in found.values()
    ]
