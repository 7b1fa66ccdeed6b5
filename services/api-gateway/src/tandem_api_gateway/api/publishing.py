"""Events the API publishes: written to the outbox in the request's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType
from tandem_shared.outbox import add_to_outbox, outbox_row

SOURCE = "/api-gateway"


async def publish(
    session: AsyncSession,
    topic: str,
    payload: BaseModel,
    *,
    type: EventType,
    subject: str | None,
    name: str,
    time: datetime | None = None,
) -> None:
    """Queue one event; its id is derived from `name`, so a retried request cannot double it."""
    envelope = Envelope.wrap(
        payload,
        type=type,
        source=SOURCE,
        subject=subject,
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        time=time,
    )
    await add_to_outbox(session, [outbox_row(topic, envelope)])
