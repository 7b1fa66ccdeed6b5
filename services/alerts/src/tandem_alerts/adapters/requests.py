"""An alert request's writes in one statement: the request, its deliveries, digest clocks.

The consumer's hot path: one round trip per request however many recipients it has. The
statement's shape never changes (the deliveries travel as arrays), so the transaction's asyncpg
connection prepares it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.repository import DEFERRED, PENDING
from tandem_alerts.domain.plan import PlannedDelivery, Timing, priority
from tandem_shared.db import Statement, fetch
from tandem_shared.events import AlertRequested
from tandem_shared.telemetry import current_traceparent

# The first request of an alert id wins; a delivery already recorded under its idempotency key
# is not recorded again; a recipient's digest clock starts at their first queued item.
_RECORD_REQUEST = Statement.of(
    "WITH saved AS ("
    "INSERT INTO alerts (alert_id, request_event_id, account_key, handoff_id, payload, "
    "trace_context) VALUES (:alert_id, :request_event_id, :account_key, :handoff_id, :payload, "
    ":trace_context) ON CONFLICT (alert_id) DO NOTHING"
    "), recorded AS ("
    "INSERT INTO deliveries (idempotency_key, alert_id, recipient_id, channel, destination, "
    "on_behalf_of, status, due_at, priority) "
    "SELECT key, :alert_id, recipient_id, channel, destination, on_behalf_of, status, due_at, "
    ":priority "
    "FROM unnest(CAST(:keys AS text[]), CAST(:recipients AS text[]), "
    "CAST(:channels AS text[]), CAST(:destinations AS text[]), CAST(:on_behalf_of AS text[]), "
    "CAST(:statuses AS text[]), CAST(:due_at AS timestamptz[])) "
    "WITH ORDINALITY "
    "AS p(key, recipient_id, channel, destination, on_behalf_of, status, due_at, n) "
    "ORDER BY n "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING recipient_id, status"
    "), clocks AS ("
    "INSERT INTO digests (recipient_id, last_sent_at) "
    "SELECT DISTINCT recipient_id, CAST(:now AS timestamptz) FROM recorded "
    "WHERE status = :deferred "
    "ON CONFLICT (recipient_id) DO NOTHING"
    ") SELECT count(*) FROM recorded",
    json=("payload", "trace_context"),
)


async def record_request(
    session: AsyncSession,
    alert: AlertRequested,
    deliveries: Sequence[PlannedDelivery],
    *,
    request_event_id: str,
    now: datetime,
) -> int:
    """Keep a request and its planned deliveries; return how many deliveries were new."""
    params = {
        "alert_id": alert.alert_id,
        "request_event_id": request_event_id,
        "account_key": alert.account_key,
        "handoff_id": alert.handoff_id,
        "payload": alert.model_dump(mode="json"),
        "trace_context": current_traceparent() or None,
        "keys": [d.idempotency_key for d in deliveries],
        "recipients": [d.recipient_id for d in deliveries],
        "channels": [d.channel.value for d in deliveries],
        "destinations": [d.destination for d in deliveries],
        "on_behalf_of": [d.on_behalf_of for d in deliveries],
        "statuses": [DEFERRED if d.timing is Timing.DIGEST else PENDING for d in deliveries],
        "due_at": [_due_at(d, now) for d in deliveries],
        "priority": priority(alert),
        "now": now,
        "deferred": DEFERRED,
    }
    [(recorded,)] = await fetch(session, _RECORD_REQUEST, params)
    return int(recorded)


def _due_at(planned: PlannedDelivery, now: datetime) -> datetime | None:
    if planned.timing is Timing.DIGEST:
        return None  # waits for the recipient's digest
    return planned.not_before if planned.timing is Timing.LATER else now
