"""The normalizers' common result: canonical events ready for the outbox, and per-element errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import uuid_utils

from tandem_ingest.domain.errors import SchemaError
from tandem_shared.envelope import EncodedEnvelope, Envelope, encode_envelope
from tandem_shared.events import EventType, Model

Loc = tuple[str | int, ...]

# Never change: event ids derive from it, so a redelivery maps to the id it had before.
EVENT_ID_NAMESPACE = uuid.UUID("e2e46a12-04b7-585c-848c-257f5a522289")
_NAMESPACE = uuid_utils.UUID(str(EVENT_ID_NAMESPACE))


def event_id(source: str, dedupe_key: str) -> str:
    """Return the deterministic event id of one vendor event (RFC 4122 uuid5).

    uuid_utils computes the same ids as the stdlib's uuid5 (a test compares them) in a seventh
    of the time: every event of every webhook needs one.
    """
    return str(uuid_utils.uuid5(_NAMESPACE, f"{source}\n{dedupe_key}"))


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """One canonical event from a vendor delivery, with what the outbox needs to publish it."""

    source: str  # the envelope source, e.g. "/ingest/hubspot"
    topic: str
    type: EventType
    subject: str | None  # the account key, the Kafka key; None when the router must resolve it
    dedupe_key: str  # the vendor's id, or a content key where the vendor's id is not unique
    occurred_at: datetime
    payload: Model

    @property
    def event_id(self) -> str:
        """Return the envelope id, the same for every redelivery of this event."""
        return event_id(self.source, self.dedupe_key)

    def encoded(self) -> EncodedEnvelope:
        """The envelope's bytes as the outbox stores them, written without building it."""
        return encode_envelope(self.payload, **self._attributes())

    def to_envelope(self, *, causationid: str | None = None) -> Envelope:
        """Wrap the payload in the versioned envelope published on `topic`."""
        return Envelope.wrap(self.payload, causationid=causationid, **self._attributes())

    def _attributes(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "id": self.event_id,
            "time": self.occurred_at,
        }


@dataclass(frozen=True, slots=True)
class Lookup:
    """An event the delivery announces but cannot fill in: the vendor sent ids, not records.

    It is archived with the delivery as a durable job; the enrichment worker fetches the records
    from the vendor's API and publishes the event under `event_id`, as if it had come at once.
    """

    source: str  # the envelope source of the event it becomes
    dedupe_key: str
    kind: str  # which fetch and mapping it needs, e.g. "hubspot.activity"
    request: Mapping[str, Any]  # JSON: the ids to fetch and what the webhook said

    @property
    def event_id(self) -> str:
        """Return the id of the event it becomes, the same for every redelivery."""
        return event_id(self.source, self.dedupe_key)


@dataclass(frozen=True, slots=True)
class ElementError:
    """Why one element of a delivery was refused; `loc` is its field path from the body's root."""

    index: int | None  # position in the batch; None for a single-record body
    loc: Loc
    message: str

    def as_dict(self) -> dict[str, Any]:
        """Return the error in the shape of a FastAPI validation error detail."""
        return {"index": self.index, "loc": list(self.loc), "msg": self.message}


Outcome = Sequence[NormalizedEvent | Lookup | ElementError]
"""What one element of a delivery became: events, lookups, errors, or nothing when ignored."""


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    """The usable events of a delivery and the elements refused; `ignored` counts skipped ones."""

    events: tuple[NormalizedEvent, ...] = ()
    errors: tuple[ElementError, ...] = ()
    ignored: int = 0
    lookups: tuple[Lookup, ...] = ()  # events that wait for the vendor's API

    @classmethod
    def collect(cls, outcomes: Iterable[Outcome]) -> NormalizeResult:
        """Gather per-element outcomes; raise SchemaError when there are errors and no event."""
        events: list[NormalizedEvent] = []
        lookups: list[Lookup] = []
        errors: list[ElementError] = []
        ignored = 0
        for outcome in outcomes:
            if not outcome:
                ignored += 1
            for item in outcome:
                if isinstance(item, NormalizedEvent):
                    events.append(item)
                elif isinstance(item, Lookup):
                    lookups.append(item)
                else:
                    errors.append(item)
        if errors and not events and not lookups:
            raise SchemaError(errors)
        return cls(
            events=tuple(events), errors=tuple(errors), ignored=ignored, lookups=tuple(lookups)
        )
