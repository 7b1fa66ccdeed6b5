"""Tandem's generic webhook format, for vendors without a public one (6sense, G2, Demandbase...)
and for sales activity from tools outside the CRM (Gong, Zoom, Calendly, a dialer's relay)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.normalized import (
    ElementError,
    Loc,
    NormalizedEvent,
    NormalizeResult,
    Outcome,
)
from tandem_ingest.domain.parsing import load_json, require_aware, validation_errors
from tandem_shared import topics
from tandem_shared.accounts import account_key
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    CrmSystem,
    EngagementKind,
    EngagementRecorded,
    EventType,
    IntentObserved,
)

SOURCE = "/ingest/generic"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Source = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[a-z0-9][a-z0-9._-]*$")
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text  # the sender's id of this record: unique per source, its redeliveries reuse it


class IntentRecord(_Record):
    """An account researching a topic, as seen by an intent provider."""

    kind: Literal["intent"]
    domain: Text
    company_name: Text | None = None
    topic: Text
    score: float = Field(ge=0, le=100)
    surge: bool
    source: Source  # the provider: 6sense, g2, demandbase, zoominfo, ...
    observed_at: AwareDatetime


class EngagementRecord(_Record):
    """A person engaging with marketing: a meeting request, a download, an event attended..."""

    kind: Literal["engagement"]
    event: EngagementKind
    email: Email
    domain: Text | None = None
    name: Text | None = None
    content_title: Text | None = None
    url: Text | None = None
    source: Source = "generic"
    occurred_at: AwareDatetime


class ActivityRecord(_Record):
    """A rep's call, email, meeting... logged by a tool outside the CRM: it can stop SLA clocks."""

    kind: Literal["activity"]
    activity: ActivityKind  # call, email, meeting, note, task, other
    rep: Email  # the rep who did it, as in the people directory
    contact_email: Email | None = None
    domain: Text | None = None  # the account's domain, when the contact's email is not known
    subject: Text | None = None
    source: Source = "generic"  # the tool: gong, zoom, calendly, dialer...
    occurred_at: AwareDatetime
    crm: CrmSystem | None = None  # the CRM whose ids follow; default: the source's config.crm
    crm_account_id: Text | None = None

    @model_validator(mode="after")
    def _names_whom(self) -> ActivityRecord:
        if self.contact_email is None and self.domain is None:
            raise ValueError("contact_email or domain is required: whom the activity touched")
        return self


class GenericConfig(BaseModel):
    """A generic source's settings: the CRM its activity records' ids belong to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: CrmSystem | None = None


Record = IntentRecord | EngagementRecord | ActivityRecord
_MODELS: dict[str, type[Record]] = {
    "intent": IntentRecord,
    "engagement": EngagementRecord,
    "activity": ActivityRecord,
}


def normalize_generic(
    body: bytes | object, *, received_at: datetime, config: GenericConfig | None = None
) -> NormalizeResult:
    """Normalize one generic record or `{"events": [...]}`; unknown fields are refused."""
    require_aware(received_at, "received_at")
    settings = config or GenericConfig()
    data = load_json(body)
    if isinstance(data, dict) and "kind" not in data:
        events = data.get("events")
        if not isinstance(events, list):
            message = 'expected a record with "kind", or {"events": [...]}'
            raise SchemaError([ElementError(None, ("events",), message)])
        return NormalizeResult.collect(
            _normalize_record(record, index, ("events", index), settings)
            for index, record in enumerate(events)
        )
    return NormalizeResult.collect([_normalize_record(data, None, (), settings)])


def _normalize_record(
    raw: object, index: int | None, prefix: Loc, config: GenericConfig
) -> Outcome:
    if not isinstance(raw, dict):
        return [ElementError(index, prefix, "expected a JSON object")]
    kind = raw.get("kind")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        expected = "expected 'intent', 'engagement' or 'activity'"
        return [ElementError(index, (*prefix, "kind"), expected)]
    try:
        record = model.model_validate(raw)
    except ValidationError as exc:
        return validation_errors(exc, index=index, prefix=prefix)
    if isinstance(record, IntentRecord):
        return _intent(record, index, prefix)
    if isinstance(record, ActivityRecord):
        return _activity(record, index, prefix, config)
    return [_engagement(record)]


def _activity(
    record: ActivityRecord, index: int | None, prefix: Loc, config: GenericConfig
) -> Outcome:
    crm = record.crm or config.crm
    if crm is None:
        message = "required: the CRM whose ids this carries (or set the source's config.crm)"
        return [ElementError(index, (*prefix, "crm"), message)]
    key = account_key(record.domain) if record.domain else None
    key = key or (account_key(record.contact_email) if record.contact_email else None)
    payload = ActivityLogged(
        crm=crm,
        activity_id=f"{record.source}:{record.id}",
        kind=record.activity,
        account_key=key,
        account_crm_id=record.crm_account_id,
        contact_email=record.contact_email,
        actor_id=record.rep,
        subject=record.subject,
        source=record.source,
        occurred_at=record.occurred_at,
    )
    # Its own namespace: an engagement record of the same sender may reuse the id.
    return [
        _event(record, topics.CRM, EventType.ACTIVITY_LOGGED, payload, key, namespace="activity:")
    ]


def _intent(record: IntentRecord, index: int | None, prefix: Loc) -> Outcome:
    key = account_key(record.domain)
    if key is None:
        return [
            ElementError(index, (*prefix, "domain"), f"not a company domain: {record.domain!r}")
        ]
    payload = IntentObserved(
        provider=record.source,
        account_key=key,
        company_name=record.company_name,
        topic=record.topic,
        score=record.score,
        surging=record.surge,
        observed_at=record.observed_at,
    )
    return [_event(record, topics.INTENT, EventType.INTENT_OBSERVED, payload, key)]


def _engagement(record: EngagementRecord) -> NormalizedEvent:
    key = account_key(record.domain) or account_key(record.email)
    payload = EngagementRecorded(
        engagement_id=f"{record.source}:{record.id}",
        source=record.source,
        kind=record.event,
        name=record.event.value,
        account_key=key,
        contact_email=record.email,
        contact_name=record.name,
        url=record.url,
        content_title=record.content_title,
        occurred_at=record.occurred_at,
    )
    return _event(record, topics.ENGAGEMENT, EventType.ENGAGEMENT_RECORDED, payload, key)


def _event(
    record: Record,
    topic: str,
    event_type: EventType,
    payload: IntentObserved | EngagementRecorded | ActivityLogged,
    subject: str | None,
    *,
    namespace: str = "",
) -> NormalizedEvent:
    return NormalizedEvent(
        source=SOURCE,
        topic=topic,
        type=event_type,
        subject=subject,
        dedupe_key=f"{namespace}{record.source}:{record.id}",
        occurred_at=record.observed_at if isinstance(record, IntentRecord) else record.occurred_at,
        payload=payload,
    )
