"""Where the core's emissions go: their topic and their envelope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tandem_shared import topics
from tandem_shared.envelope import Envelope, encode_envelope, utcnow
from tandem_shared.events import EventType
from tandem_shared.outbox import outbox_rows
from tandem_sla_monitor.domain.emissions import Emission

SOURCE = "/sla-monitor"

_TOPICS: dict[EventType, str] = {
    EventType.SLA_STARTED: topics.SLA,
    EventType.SLA_WARNING: topics.SLA,
    EventType.SLA_BREACHED: topics.SLA,
    EventType.SLA_MET: topics.SLA,
    EventType.SLA_ESCALATED: topics.SLA,
    EventType.SLA_ACKNOWLEDGED: topics.SLA,
    EventType.ALERT_REQUESTED: topics.ALERT_REQUESTS,
    EventType.HANDOFF_REASSIGN_REQUESTED: topics.HANDOFF_ACTIONS,
}


def topic_for(event_type: EventType) -> str:
    """Return the topic an emitted event type is published on."""
    return _TOPICS[event_type]


def _attributes(emission: Emission, causationid: str | None) -> dict[str, Any]:
    # Its id is the emission's stable id; its subject the account key.
    return {
        "type": emission.event_type,
        "source": SOURCE,
        "subject": emission.subject,
        "id": emission.event_id,
        "causationid": causationid,
    }


def envelope_of(emission: Emission, *, causationid: str | None = None) -> Envelope:
    """Wrap an emission in the envelope it travels in."""
    return Envelope.wrap(emission.payload, **_attributes(emission, causationid))


def emission_rows(
    emissions: Iterable[Emission], *, causationid: str | None = None
) -> list[dict[str, Any]]:
    """Return the outbox rows that publish some emissions, all in the current trace.

    The bytes `envelope_of(...).to_bytes()` writes, without building the envelopes.
    """
    now = utcnow()
    return outbox_rows(
        (
            topic_for(e.event_type),
            encode_envelope(e.payload, time=now, **_attributes(e, causationid)),
        )
        for e in emissions
    )
