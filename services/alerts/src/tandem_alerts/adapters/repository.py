"""Every query of the Alerts service: alerts, deliveries, attempts, destination and digest state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.tables import (
    alerts,
    deliveries,
    delivery_attempts,
    digests,
)
from tandem_alerts.domain.delivery_policy import RATE_LIMITED_REASON
from tandem_alerts.domain.plan import PlannedDelivery, Timing
from tandem_shared.db import Statement, fetch
from tandem_shared.events import AlertRequested, DeliveryChannel
from tandem_shared.telemetry import current_traceparent

PENDING = "pending"
DEFERRED = "deferred"
SENT = "sent"
FAILED = "failed"
OPEN = (PENDING, DEFERRED)  # not yet sent or given up


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as stored."""

    id: int
    idempotency_key: str
    alert_id: str
    recipient_id: str
    channel: DeliveryChannel
    destination: str
    on_behalf_of: str | None
    attempts: int
    created_at: datetime
    # Taken by a lease to send at this time and not recorded since: perhaps sent already.
    sending_since: datetime | None = None


@dataclass(frozen=True)
class StoredAlert:
    alert: AlertRequested
    request_event_id: str
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: int
    attempt: int
    outcome: str
    error: str | None
    duration_ms: int
    attempted_at: datetime
    coalesced: bool = False
    digest: bool = False


# ---- alerts ---------------------------------------------------------------------------------


async def save_alert(
    session: AsyncSession, alert: AlertRequested, *, request_event_id: str
) -> None:
    """Keep the request (the first one wins: a re-sent alert id is the same alert)."""
    await session.execute(
        insert(alerts)
        .values(
            alert_id=alert.alert_id,
            request_event_id=request_event_id,
            account_key=alert.account_key,
            handoff_id=alert.handoff_id,
            payload=alert.model_dump(mode="json"),
            trace_context=current_traceparent() or None,
        )
        .on_conflict_do_nothing(index_elements=["alert_id"])
    )


_LOAD_ALERTS = Statement.of(
    "SELECT alert_id, payload, request_event_id, trace_context FROM alerts "
    "WHERE alert_id = ANY(CAST(:ids AS text[]))"
)


async def load_alerts(session: AsyncSession, alert_ids: Iterable[str]) -> dict[str, StoredAlert]:
    """Return the stored requests with these ids."""
    rows = await fetch(session, _LOAD_ALERTS, {"ids": list(alert_ids)})
    return {r["alert_id"]: stored_alert(r) for r in rows}


def stored_alert(row: Mapping[str, Any]) -> StoredAlert:
    """A stored request from its row: payload, request_event_id, trace_context."""
    return StoredAlert(
        AlertRequested.model_validate(row["payload"]), row["request_event_id"], row["trace_context"]
    )


async def account_of_handoff(session: AsyncSession, handoff_id: str) -> str | None:
    """Return the account key of an alert about this handoff, if one was sent."""
    result = await session.execute(
        sa.select(alerts.c.account_key).where(alerts.c.handoff_id == handoff_id).limit(1)
    )
    return result.scalar_one_or_none()


# ---- deliveries -----------------------------------------------------------------------------


async def record_planned(session: AsyncSession, planned: PlannedDelivery, *, now: datetime) -> bool:
    """Record a planned delivery; False when its idempotency key was already recorded."""
    deferred = planned.timing is Timing.DIGEST
    due_at = planned.not_before if planned.timing is Timing.LATER else now
    result = await session.execute(
        insert(deliveries)
        .values(
            idempotency_key=planned.idempotency_key,
            alert_id=planned.alert_id,
            recipient_id=planned.recipient_id,
            channel=planned.channel.value,
            destination=planned.destination,
            on_behalf_of=planned.on_behalf_of,
            status=DEFERRED if deferred else PENDING,
            due_at=None if deferred else due_at,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(deliveries.c.id)
    )
    return result.first() is not None


async def record_unplannable(
    session: AsyncSession, *, idempotency_key: str, alert_id: str, recipient_id: str, error: str
) -> bool:
    """Record a recipient no delivery could be planned for; False when already recorded."""
    result = await session.execute(
        insert(deliveries)
        .values(
            idempotency_key=idempotency_key,
            alert_id=alert_id,
            recipient_id=recipient_id,
            status=FAILED,
            last_error=error,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(deliveries.c.id)
    )
    return result.first() is not None


async def deferred_deliveries(session: AsyncSession, recipient_id: str) -> list[DeliveryRow]:
    """Return the recipient's digest queue."""
    rows = await session.execute(
        sa.select(deliveries)
        .where(deliveries.c.recipient_id == recipient_id, deliveries.c.status == DEFERRED)
        .order_by(deliveries.c.created_at, deliveries.c.id)
    )
    return [delivery_of(r._mapping) for r in rows]


async def reschedule(session: AsyncSession, ids: Sequence[int], *, due_at: datetime) -> None:
    """Move pending deliveries to a later time without counting an attempt."""
    await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(due_at=due_at, updated_at=sa.func.now())
    )


# Set when a lease takes deliveries to send, cleared when it will not send them after all.
_SET_SENDING = Statement.of(
    "UPDATE deliveries SET sending_since = CAST(:at AS timestamptz) "
    "WHERE id = ANY(CAST(:ids AS bigint[]))"
)


async def mark_sending(session: AsyncSession, ids: Sequence[int], *, now: datetime) -> None:
    """Mark deliveries a lease is about to send; their recorded outcome clears the mark."""
    await fetch(session, _SET_SENDING, {"ids": list(ids), "at": now})


async def unmark_sending(session: AsyncSession, ids: Sequence[int]) -> None:
    """Unmark deliveries a lease took but will not send (the lease ended first)."""
    await fetch(session, _SET_SENDING, {"ids": list(ids), "at": None})


# Hot: once per message out, so prepared once per connection rather than compiled per call.
_MARK_SENT = Statement.of(
    "UPDATE deliveries SET status = :sent, attempts = attempts + 1, sent_at = :sent_at, "
    "slack_ts = :slack_ts, slack_channel = :slack_channel, coalesced = :coalesced, "
    "last_error = NULL, sending_since = NULL, updated_at = now() "
    "WHERE id = ANY(CAST(:ids AS bigint[])) AND status = ANY(CAST(:open AS text[])) RETURNING id"
)


async def mark_sent(
    session: AsyncSession,
    ids: Sequence[int],
    *,
    sent_at: datetime,
    slack_ts: str | None,
    coalesced: bool,
    slack_channel: str | None = None,
) -> set[int]:
    """Record deliveries as sent by one more attempt; return those that were still open.

    A delivery already sent or failed is left alone: a second sender (one whose lease ran out
    while it sent) learns that it sent a repeat instead of overwriting the first outcome.
    """
    params = {
        "sent": SENT,
        "ids": list(ids),
        "open": list(OPEN),
        "sent_at": sent_at,
        "slack_ts": slack_ts,
        "slack_channel": slack_channel,
        "coalesced": coalesced,
    }
    return {row["id"] for row in await fetch(session, _MARK_SENT, params)}


async def mark_failed_attempt(
    session: AsyncSession,
    ids: Sequence[int],
    *,
    error: str,
    retry_at: datetime | None,
    maybe_sent: bool = False,
) -> set[int]:
    """Count a failed attempt: retry at `retry_at`, or fail for good when it is None.

    Only deliveries still open are touched (another sender may have sent one meanwhile); return
    those. `maybe_sent` (no answer came) keeps the sending mark, so the retry looks first.
    """
    values: dict[str, Any] = {
        "attempts": deliveries.c.attempts + 1,
        "last_error": error,
        "updated_at": sa.func.now(),
    }
    if not maybe_sent:
        values["sending_since"] = None
    values |= {"due_at": retry_at} if retry_at is not None else {"status": FAILED}
    result = await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.id.in_(ids), deliveries.c.status.in_(OPEN))
        .values(**values)
        .returning(deliveries.c.id)
    )
    return set(result.scalars())


async def first_failures(session: AsyncSession, ids: Sequence[int]) -> dict[int, datetime]:
    """Return when each delivery first failed in a way that counts towards giving up.

    Absent for a delivery failing for the first time. A 429 (rate limited) does not count: it is
    Slack asking us to wait, and the give-up clock starts at the first real failure.
    """
    attempt = delivery_attempts.c
    rows = await session.execute(
        sa.select(attempt.delivery_id, sa.func.min(attempt.attempted_at))
        .where(attempt.delivery_id.in_(list(ids)), attempt.outcome != SENT)
        .where(sa.not_(sa.func.coalesce(attempt.error, "").startswith(RATE_LIMITED_REASON)))
        .group_by(attempt.delivery_id)
    )
    return {delivery_id: at for delivery_id, at in rows}


_LOG_ATTEMPTS = Statement.of(
    "INSERT INTO delivery_attempts (delivery_id, attempt, outcome, error, duration_ms, "
    "attempted_at, coalesced, digest) "
    "SELECT * FROM unnest(CAST(:delivery_id AS bigint[]), CAST(:attempt AS int[]), "
    "CAST(:outcome AS text[]), CAST(:error AS text[]), CAST(:duration_ms AS int[]), "
    "CAST(:attempted_at AS timestamptz[]), CAST(:coalesced AS boolean[]), "
    "CAST(:digest AS boolean[]))"
)


async def log_attempts(session: AsyncSession, records: Sequence[AttemptRecord]) -> None:
    """Append attempts to the log, in one statement."""
    if records:
        columns = [field.name for field in fields(AttemptRecord)]
        params = {name: [getattr(r, name) for r in records] for name in columns}
        await fetch(session, _LOG_ATTEMPTS, params)


# ---- digests --------------------------------------------------------------------------------


async def start_digest_period(session: AsyncSession, recipient_id: str, *, now: datetime) -> None:
    """Begin a person's digest clock at their first queued item (their first digest waits)."""
    await session.execute(
        insert(digests)
        .values(recipient_id=recipient_id, last_sent_at=now)
        .on_conflict_do_nothing(index_elements=["recipient_id"])
    )


async def recipients_with_digest_queue(session: AsyncSession, *, now: datetime) -> list[str]:
    """Return people with deferred deliveries whose digest is not leased."""
    lease = digests.c.leased_until
    rows = await session.execute(
        sa.select(deliveries.c.recipient_id)
        .select_from(
            deliveries.outerjoin(digests, digests.c.recipient_id == deliveries.c.recipient_id)
        )
        .where(deliveries.c.status == DEFERRED)
        .where(sa.or_(lease.is_(None), lease < now))
        .distinct()
    )
    return list(rows.scalars())


async def lease_digest(
    session: AsyncSession, recipient_id: str, *, now: datetime, until: datetime
) -> datetime | None:
    """Take the person's digest lease; return their last digest time, or None when held."""
    await start_digest_period(session, recipient_id, now=now)
    key = digests.c.recipient_id == recipient_id
    last = (
        await session.execute(
            sa.select(digests.c.last_sent_at)
            .where(key)
            .where(sa.or_(digests.c.leased_until.is_(None), digests.c.leased_until < now))
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if last is not None:
        await session.execute(sa.update(digests).where(key).values(leased_until=until))
    return last


async def release_digest(
    session: AsyncSession, recipient_id: str, *, sent_at: datetime | None
) -> None:
    """End the digest lease; `sent_at` records a digest that went out."""
    values: dict[str, Any] = {"leased_until": None}
    if sent_at is not None:
        values["last_sent_at"] = sent_at
    await session.execute(
        sa.update(digests).where(digests.c.recipient_id == recipient_id).values(**values)
    )


def delivery_of(row: Mapping[Any, Any]) -> DeliveryRow:
    """A delivery from a row of either driver (SQLAlchemy's mapping, or asyncpg's record)."""
    return DeliveryRow(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        alert_id=row["alert_id"],
        recipient_id=row["recipient_id"],
        channel=DeliveryChannel(row["channel"]),
        destination=row["destination"],
        on_behalf_of=row["on_behalf_of"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        sending_since=row["sending_since"],
    )
