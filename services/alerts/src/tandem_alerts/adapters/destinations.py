"""A destination's lease and its pacing and circuit state.

The lease makes one worker at a time the sender of a destination. Its expiry, `leased_until`,
doubles as the lease's token: each claim writes its own, so a worker whose lease ran out (it was
starved of CPU, or its database round trips stalled) and was taken over finds the row no longer
holds its token, and neither sends nor overwrites the new holder's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from asyncpg import Record
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.repository import PENDING, DeliveryRow, delivery_of
from tandem_alerts.adapters.tables import deliveries
from tandem_alerts.domain.circuit import Circuit
from tandem_alerts.domain.pacing import ChannelPacer
from tandem_shared.db import Statement, fetch
from tandem_shared.events import DeliveryChannel


@dataclass(frozen=True)
class DestinationState:
    channel: DeliveryChannel
    destination: str
    pacer: ChannelPacer
    circuit: Circuit
    lease: datetime | None = None  # this holder's lease expiry, its token


_State = TypeVar("_State", ChannelPacer, Circuit)

# The hot path in one round trip: the row exists, and is free or another worker holds it. With
# the lease come the destination's due pending deliveries, most urgent first, then oldest, each
# with its alert's request (a free destination with none due answers one row of nulls).
_CLAIM = Statement.of(
    "WITH free AS ("
    "SELECT channel, destination FROM destinations "
    "WHERE channel = :channel AND destination = :destination "
    "AND (leased_until IS NULL OR leased_until < :now) FOR UPDATE SKIP LOCKED"
    "), leased AS ("
    "UPDATE destinations AS d SET leased_until = :until FROM free "
    "WHERE d.channel = free.channel AND d.destination = free.destination "
    "RETURNING d.pacer, d.circuit"
    ") SELECT leased.pacer AS lease_pacer, leased.circuit AS lease_circuit, q.* FROM leased "
    f"LEFT JOIN LATERAL (SELECT {', '.join(f'x.{c.name}' for c in deliveries.columns)}, "
    "a.payload, a.request_event_id, a.trace_context "
    "FROM deliveries AS x LEFT JOIN alerts AS a ON a.alert_id = x.alert_id "
    "WHERE x.channel = :channel AND x.destination = :destination AND x.status = :pending "
    "AND x.due_at <= :now ORDER BY x.priority, x.created_at, x.id LIMIT :limit"
    ") AS q ON true ORDER BY q.priority, q.created_at, q.id"
)
# Written only by the lease's holder (its token in `leased_until`, when it has one).
SAVE_SQL = (
    "UPDATE destinations SET pacer = :pacer, circuit = :circuit, updated_at = now(), "
    "leased_until = CASE WHEN CAST(:release AS boolean) THEN NULL ELSE leased_until END "
    "WHERE channel = :channel AND destination = :destination "
    "AND (CAST(:lease AS timestamptz) IS NULL OR leased_until = :lease)"
)
_SAVE = Statement.of(f"{SAVE_SQL} RETURNING channel", json=("pacer", "circuit"))
_ADD = Statement.of(
    "INSERT INTO destinations (channel, destination) VALUES (:channel, :destination) "
    "ON CONFLICT (channel, destination) DO NOTHING RETURNING channel"
)


@dataclass(frozen=True)
class Claim:
    """A destination's lease, with its due deliveries and the stored requests they send."""

    state: DestinationState
    due: list[DeliveryRow]
    requests: dict[str, Record]  # by alert id: payload, request_event_id, trace_context


async def claim_destination(
    session: AsyncSession,
    channel: DeliveryChannel,
    destination: str,
    *,
    now: datetime,
    until: datetime,
    limit: int,
) -> Claim | None:
    """Take the destination's lease until `until`, with up to `limit` of its due deliveries;
    None when another worker holds it."""
    key = {"channel": channel.value, "destination": destination}
    params = key | {"now": now, "until": until, "pending": PENDING, "limit": limit}
    rows = await fetch(session, _CLAIM, params)
    if not rows and await fetch(session, _ADD, key):
        rows = await fetch(session, _CLAIM, params)  # a destination seen for the first time
    if not rows:
        return None
    state = DestinationState(
        channel=channel,
        destination=destination,
        pacer=_model(ChannelPacer, rows[0]["lease_pacer"]),
        circuit=_model(Circuit, rows[0]["lease_circuit"]),
        lease=until,
    )
    due = [delivery_of(r) for r in rows if r["id"] is not None]
    requests = {r["alert_id"]: r for r in rows if r["payload"] is not None}
    return Claim(state, due, requests)


def _model(kind: type[_State], stored: Any) -> _State:
    """Read a stored JSON state (decoded by the session's jsonb codec); the default for a
    destination that has none yet."""
    return kind() if stored is None else kind.model_validate(stored)


async def save_destination(
    session: AsyncSession, state: DestinationState, *, release: bool
) -> bool:
    """Store pacing and circuit state (`release` ends the lease); False when the lease was lost.

    A holder that lost its lease writes nothing: the state is the new holder's now.
    """
    rows = await fetch(session, _SAVE, save_params(state, release=release))
    return bool(rows)


def save_params(state: DestinationState, *, release: bool) -> dict[str, Any]:
    """The parameters of SAVE_SQL that store `state`."""
    return {
        "channel": state.channel.value,
        "destination": state.destination,
        "pacer": state.pacer.model_dump(mode="json"),
        "circuit": state.circuit.model_dump(mode="json"),
        "release": release,
        "lease": state.lease,
    }
