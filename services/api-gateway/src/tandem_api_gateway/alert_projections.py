"""Projections of alerts: what was sent about which account, and each delivery's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import projection_store as store
from tandem_api_gateway.adapters.tables import alerts
from tandem_api_gateway.domain import timeline as tl
from tandem_shared import events as ev
from tandem_shared.envelope import Envelope


async def on_alert_requested(envelope: Envelope, session: AsyncSession) -> None:
    """Project an alert: what, about which account, to whom."""
    event = envelope.payload(ev.AlertRequested)
    key = {"alert_id": event.alert_id}
    await store.lock_row(session, alerts, key=key, defaults={"sort_at": event.requested_at})
    values = {
        "kind": event.kind.value,
        "urgency": event.urgency.value,
        "title": event.title,
        "summary": event.summary,
        "account_key": event.account_key,
        "account_name": event.account_name,
        "handoff_id": event.handoff_id,
        "tier": event.tier.value if event.tier else None,
        "signal": event.signal.value if event.signal else None,
        "crm_url": event.crm_url,
        "recipient_ids": list(event.recipient_ids),
        "channel_ids": list(event.channel_ids),
        "requested_at": event.requested_at,
        "sort_at": event.requested_at,
    }
    await store.update_row(session, alerts, key=key, values=values)
    notice = store.change("alert", event.alert_id, event.account_key)
    if event.account_key:
        await store.add_to_account(session, event.account_key, tl.from_alert(event), notify=notice)
    else:
        await store.notify_feed(session, notice)


async def on_alert_delivered(envelope: Envelope, session: AsyncSession) -> None:
    """Record a delivery of an alert to one recipient on one channel."""
    event = envelope.payload(ev.AlertDelivered)
    await _delivery(
        session,
        alert_id=event.alert_id,
        at=event.delivered_at,
        values={
            "recipient_id": event.recipient_id,
            "channel": event.channel.value,
            "status": "delivered",
            "destination": event.destination,
            "attempts": event.attempts,
            "at": event.delivered_at,
        },
    )


async def on_alert_failed(envelope: Envelope, session: AsyncSession) -> None:
    """Record a failed delivery of an alert."""
    event = envelope.payload(ev.AlertFailed)
    await _delivery(
        session,
        alert_id=event.alert_id,
        at=event.failed_at,
        values={
            "recipient_id": event.recipient_id,
            "channel": event.channel.value if event.channel else "none",
            "status": "failed",
            "destination": event.destination,
            "attempts": event.attempts,
            "error": event.error,
            "permanent": event.permanent,
            "at": event.failed_at,
        },
    )


async def _delivery(
    session: AsyncSession, *, alert_id: str, at: datetime, values: dict[str, Any]
) -> None:
    key = {"alert_id": alert_id}
    row = await store.lock_row(session, alerts, key=key, defaults={"sort_at": at})
    notice = store.change("alert", alert_id, row["account_key"])
    await store.record_delivery(session, {"alert_id": alert_id, **values}, notify=notice)
