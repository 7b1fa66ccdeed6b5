"""Projection of tandem.people: each person's run-time availability, merged as the other services
merge it (tandem_shared.availability), for `GET /v1/people/{id}/availability`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.availability import record_change
from tandem_shared.envelope import Envelope
from tandem_shared.events import AvailabilityChanged


async def on_availability_changed(envelope: Envelope, session: AsyncSession) -> None:
    """Merge a change into the person's stored availability (an older change loses)."""
    await record_change(session, envelope.payload(AvailabilityChanged))
