"""The events a delivery's outcome publishes through the outbox, and the DLQ record of a give-up."""

from __future__ import annotations

import uuid
from datetime import datetime

from tandem_alerts.adapters.repository import DeliveryRow, StoredAlert
from tandem_shared.envelope import Envelope
from tandem_shared.events import AlertDelivered, AlertFailed, DeliveryChannel, EventType
from tandem_shared.topics import ALERT_DELIVERIES, ALERTS_GROUP, dead_letter_topic
from tandem_shared.uow import UnitOfWork

SOURCE = "/alerts"
_IDS = uuid.UUID("6f1c1d0e-5b8e-4c59-9d53-6a0a7f4e2b11")


def event_id(kind: str, key: str) -> str:
    """Return a deterministic event id, so a re-recorded outcome is the same event."""
    return str(uuid.uuid5(_IDS, f"{kind}:{key}"))


def publish_delivered(
    uow: UnitOfWork,
    delivery: DeliveryRow,
    stored: StoredAlert | None,
    *,
    attempts: int,
    coalesced: bool,
    now: datetime,
) -> None:
    """Publish AlertDelivered for a sent delivery."""
    payload = AlertDelivered(
        alert_id=delivery.alert_id,
        recipient_id=delivery.recipient_id,
        channel=delivery.channel,
        destination=delivery.destination,
        attempts=attempts,
        coalesced=coalesced,
        on_behalf_of=delivery.on_behalf_of,
        handoff_id=stored.alert.handoff_id if stored is not None else None,
        delivered_at=now,
    )
    envelope = _wrap(payload, EventType.ALERT_DELIVERED, delivery.idempotency_key, stored, now)
    uow.emit(ALERT_DELIVERIES, envelope)


async def publish_failed(
    uow: UnitOfWork,
    *,
    idempotency_key: str,
    failure: AlertFailed,
    stored: StoredAlert | None,
) -> None:
    """Publish AlertFailed, and dead-letter it with its reason: a give-up is never silent."""
    envelope = _wrap(failure, EventType.ALERT_FAILED, idempotency_key, stored, failure.failed_at)
    headers = {
        "dlq.reason": failure.error[:4000],
        "dlq.group": ALERTS_GROUP,
        "dlq.topic": ALERT_DELIVERIES,
        "dlq.idempotency_key": idempotency_key,
        "dlq.attempts": str(failure.attempts),
        "dlq.permanent": str(failure.permanent).lower(),
    }
    uow.emit(ALERT_DELIVERIES, envelope)
    uow.emit(dead_letter_topic(ALERTS_GROUP), envelope, headers)


def delivery_failure(
    delivery: DeliveryRow, *, error: str, attempts: int, permanent: bool, now: datetime
) -> AlertFailed:
    """Describe a delivery that was given up."""
    return AlertFailed(
        alert_id=delivery.alert_id,
        recipient_id=delivery.recipient_id,
        channel=DeliveryChannel(delivery.channel),
        destination=delivery.destination,
        attempts=attempts,
        error=error,
        permanent=permanent,
        failed_at=now,
    )


def _wrap(
    payload: AlertDelivered | AlertFailed,
    type_: EventType,
    key: str,
    stored: StoredAlert | None,
    now: datetime,
) -> Envelope:
    return Envelope.wrap(
        payload,
        type=type_,
        source=SOURCE,
        subject=stored.alert.account_key if stored is not None else None,
        id=event_id(type_.value, key),
        time=now,
        causationid=stored.request_event_id if stored is not None else None,
    )
