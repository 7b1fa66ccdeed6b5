"""Events the API publishes: emitted by the request's unit of work, so they leave if it commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType
from tandem_shared.uow import UnitOfWork

SOURCE = "/api-gateway"


def publish(
    uow: UnitOfWork,
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
    uow.emit(topic, envelope)
