"""The delivery worker's hot statements: which destinations are due, and a send's record.

Each runs once per round or once per message out, so each is one prepared statement on the
transaction's asyncpg connection rather than a query compiled and run through the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.destinations import SAVE_SQL, DestinationState, save_params
from tandem_alerts.adapters.repository import OPEN, PENDING, SENT
from tandem_shared.db import Statement, fetch
from tandem_shared.events import DeliveryChannel

# Destinations with a delivery due and no live lease: those with an urgent one first (a meeting
# request never waits behind a backlog of intent surges), then oldest due.
_DUE_DESTINATIONS = Statement.of(
    "SELECT d.channel, d.destination FROM deliveries AS d "
    "LEFT JOIN destinations AS l ON l.channel = d.channel AND l.destination = d.destination "
    "WHERE d.status = :pending AND d.due_at <= :now "
    "AND (l.leased_until IS NULL OR l.leased_until < :now) "
    "GROUP BY d.channel, d.destination ORDER BY min(d.priority), min(d.due_at) LIMIT :limit"
)


async def due_destinations(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[DeliveryChannel, str]]:
    """Return up to `limit` destinations with a delivery due and no live lease, most urgent
    first, then oldest due."""
    rows = await fetch(session, _DUE_DESTINATIONS, {"pending": PENDING, "now": now, "limit": limit})
    return [(DeliveryChannel(r["channel"]), r["destination"]) for r in rows]


# Marked sent by one more attempt, and that attempt logged, in one round trip for any number of
# messages (each delivery travels with its message's answer); with them, when asked, the
# destination's state saved. Only deliveries still open are touched: a second sender (one whose
# lease ran out while it sent) learns that it sent a repeat instead of overwriting the first
# outcome. The last row counts the destination rows saved (none: the lease was lost).
_RECORD_SENT = Statement.of(
    "WITH sent AS ("
    "SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:slack_ts AS text[]), "
    "CAST(:slack_channel AS text[]), CAST(:coalesced AS boolean[]), "
    "CAST(:duration_ms AS int[])) AS s(id, slack_ts, slack_channel, coalesced, duration_ms)"
    "), marked AS ("
    "UPDATE deliveries AS d SET status = :sent, attempts = d.attempts + 1, sent_at = :sent_at, "
    "slack_ts = sent.slack_ts, slack_channel = sent.slack_channel, coalesced = sent.coalesced, "
    "last_error = NULL, sending_since = NULL, updated_at = now() FROM sent "
    "WHERE d.id = sent.id AND d.status = ANY(CAST(:open AS text[])) "
    "RETURNING d.id, d.attempts, sent.coalesced, sent.duration_ms"
    "), logged AS ("
    "INSERT INTO delivery_attempts (delivery_id, attempt, outcome, error, duration_ms, "
    "attempted_at, coalesced, digest) "
    "SELECT id, attempts, :sent, NULL, duration_ms, :sent_at, coalesced, false FROM marked"
    f"), saved AS ({SAVE_SQL} AND CAST(:save AS boolean) RETURNING channel"
    ") SELECT id, attempts FROM marked "
    "UNION ALL SELECT NULL, CAST(count(*) AS int) FROM saved",
    json=("pacer", "circuit"),
)


@dataclass(frozen=True)
class SentMessage:
    """A message Slack, SMTP or the log took: its deliveries and the answer."""

    ids: Sequence[int]
    slack_ts: str | None
    slack_channel: str | None
    coalesced: bool
    duration_ms: int


async def record_sent(
    session: AsyncSession,
    messages: Sequence[SentMessage],
    *,
    sent_at: datetime,
    state: DestinationState,
    save: bool,
    release: bool,
) -> tuple[dict[int, int], bool]:
    """Record the messages' deliveries as sent and log the attempts; with `save`, store the
    destination's `state` too (`release` ends the lease).

    Return the attempt number of each delivery that was still open, by delivery id, and whether
    the state was saved (False when not asked, or when the lease was lost).
    """
    each = [(i, m) for m in messages for i in m.ids]
    params = save_params(state, release=release) | {
        "save": save,
        "sent": SENT,
        "open": list(OPEN),
        "sent_at": sent_at,
        "ids": [i for i, _ in each],
        "slack_ts": [m.slack_ts for _, m in each],
        "slack_channel": [m.slack_channel for _, m in each],
        "coalesced": [m.coalesced for _, m in each],
        "duration_ms": [m.duration_ms for _, m in each],
    }
    rows = await fetch(session, _RECORD_SENT, params)
    marked = {row["id"]: row["attempts"] for row in rows if row["id"] is not None}
    return marked, any(row["id"] is None and row["attempts"] for row in rows)
