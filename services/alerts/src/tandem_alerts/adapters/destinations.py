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

from sqlalchemy.ext.asyncio import AsyncSession

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

# The hot path in one round trip: the row exists, and is free or another worker holds it.
_LEASE = Statement.of(
    "WITH free AS ("
    "SELECT channel, destination FROM destinations "
    "WHERE channel = :channel AND destination = :destination "
    "AND (leased_until IS NULL OR leased_until < :now) FOR UPDATE SKIP LOCKED"
    ") UPDATE destinations AS d SET leased_until = :until FROM free "
    "WHERE d.channel = free.channel AND d.destination = free.destination "
    "RETURNING d.pacer, d.circuit"
)
_SAVE = Statement.of(
    "UPDATE destinations SET pacer = :pacer, circuit = :circuit, updated_at = now(), "
    "leased_until = CASE WHEN CAST(:release AS boolean) THEN NULL ELSE leased_until END "
    "WHERE channel = :channel AND destination = :destination "
    "AND (CAST(:lease AS timestamptz) IS NULL OR leased_until = :lease) RETURNING channel",
    json=("pacer", "circuit"),
)
_ADD = Statement.of(
    "INSERT INTO destinations (channel, destination) VALUES (:channel, :destination) "
    "ON CONFLICT (channel, destination) DO NOTHING RETURNING channel"
)


async def lease_destination(
    session: AsyncSession,
    channel: DeliveryChannel,
    destination: str,
    *,
    now: datetime,
    until: datetime,
) -> DestinationState | None:
    """Take the destination's lease until `until`; None when another worker holds it."""
    key = {"channel": channel.value, "destination": destination}
    lease = key | {"now": now, "until": until}
    rows = await fetch(session, _LEASE, lease)
    if not rows and await fetch(session, _ADD, key):
        rows = await fetch(session, _LEASE, lease)  # a destination seen for the first time
    if not rows:
        return None
    pacer, circuit = rows[0]["pacer"], rows[0]["circuit"]
    return DestinationState(
        channel=channel,
        destination=destination,
        pacer=_model(ChannelPacer, pacer),
        circuit=_model(Circuit, circuit),
        lease=until,
    )


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
    rows = await fetch(
        session,
        _SAVE,
        {
            "channel": state.channel.value,
            "destination": state.destination,
            "pacer": state.pacer.model_dump(mode="json"),
            "circuit": state.circuit.model_dump(mode="json"),
            "release": release,
            "lease": state.lease,
        },
    )
    return bool(rows)
