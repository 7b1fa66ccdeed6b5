"""A destination's lease and its pacing and circuit state.

The lease makes one worker at a time the sender of a destination. Its expiry, `leased_until`,
doubles as the lease's token: each claim writes its own, so a worker whose lease ran out (it was
starved of CPU, or its database round trips stalled) and was taken over finds the row no longer
holds its token, and neither sends nor overwrites the new holder's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.tables import destinations
from tandem_alerts.domain.circuit import Circuit
from tandem_alerts.domain.pacing import ChannelPacer
from tandem_shared.events import DeliveryChannel


@dataclass(frozen=True)
class DestinationState:
    channel: DeliveryChannel
    destination: str
    pacer: ChannelPacer
    circuit: Circuit
    lease: datetime | None = None  # this holder's lease expiry, its token


async def lease_destination(
    session: AsyncSession,
    channel: DeliveryChannel,
    destination: str,
    *,
    now: datetime,
    until: datetime,
) -> DestinationState | None:
    """Take the destination's lease until `until`; None when another worker holds it."""
    await session.execute(
        insert(destinations)
        .values(channel=channel.value, destination=destination)
        .on_conflict_do_nothing(index_elements=["channel", "destination"])
    )
    key = _destination_key(channel, destination)
    row = (
        await session.execute(
            sa.select(destinations.c.pacer, destinations.c.circuit)
            .where(key)
            .where(sa.or_(destinations.c.leased_until.is_(None), destinations.c.leased_until < now))
            .with_for_update(skip_locked=True)
        )
    ).first()
    if row is None:
        return None
    await session.execute(sa.update(destinations).where(key).values(leased_until=until))
    return DestinationState(
        channel=channel,
        destination=destination,
        pacer=ChannelPacer.model_validate(row.pacer) if row.pacer else ChannelPacer(),
        circuit=Circuit.model_validate(row.circuit) if row.circuit else Circuit(),
        lease=until,
    )


async def lease_held(session: AsyncSession, state: DestinationState, *, now: datetime) -> bool:
    """Return True while `state`'s lease is still the destination's and has not run out."""
    if state.lease is None or state.lease <= now:
        return False
    held = await session.execute(
        sa.select(sa.literal(True))
        .where(_destination_key(state.channel, state.destination))
        .where(destinations.c.leased_until == state.lease)
    )
    return held.first() is not None


async def save_destination(
    session: AsyncSession, state: DestinationState, *, release: bool
) -> bool:
    """Store pacing and circuit state (`release` ends the lease); False when the lease was lost.

    A holder that lost its lease writes nothing: the state is the new holder's now.
    """
    values: dict[str, Any] = {
        "pacer": state.pacer.model_dump(mode="json"),
        "circuit": state.circuit.model_dump(mode="json"),
        "updated_at": sa.func.now(),
    }
    if release:
        values["leased_until"] = None
    query = sa.update(destinations).where(_destination_key(state.channel, state.destination))
    if state.lease is not None:
        query = query.where(destinations.c.leased_until == state.lease)
    result = await session.execute(query.values(**values).returning(destinations.c.channel))
    return result.first() is not None


def _destination_key(channel: DeliveryChannel, destination: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        destinations.c.channel == channel.value, destinations.c.destination == destination
    )
