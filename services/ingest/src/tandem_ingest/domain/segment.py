"""Segment spec messages (track, identify, group, page) -> EngagementRecorded."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.normalized import (
    ElementError,
    Loc,
    NormalizedEvent,
    NormalizeResult,
    Outcome,
)
from tandem_ingest.domain.parsing import clean_text, load_json, require_aware, validation_errors
from tandem_shared import topics
from tandem_shared.accounts import account_key
from tandem_shared.events import EngagementKind, EngagementRecorded, EventType

SOURCE = "/ingest/segment"

DEFAULT_EVENT_KINDS: dict[str, EngagementKind] = {
    "Meeting Requested": EngagementKind.MEETING_REQUEST,
    "Demo Requested": EngagementKind.MEETING_REQUEST,
    "Meeting Booked": EngagementKind.MEETING_REQUEST,
    "Contact Sales Requested": EngagementKind.MEETING_REQUEST,
    "Whitepaper Downloaded": EngagementKind.CONTENT_DOWNLOAD,
    "Content Downloaded": EngagementKind.CONTENT_DOWNLOAD,
    "Ebook Downloaded": EngagementKind.CONTENT_DOWNLOAD,
    "Case Study Downloaded": EngagementKind.CONTENT_DOWNLOAD,
    "Report Downloaded": EngagementKind.CONTENT_DOWNLOAD,
    "Form Submitted": EngagementKind.FORM_FILL,
    "Event Attended": EngagementKind.EVENT_ATTENDANCE,
    "Webinar Attended": EngagementKind.EVENT_ATTENDANCE,
    "Ad Clicked": EngagementKind.AD_CLICK,
    "Email Opened": EngagementKind.EMAIL_ENGAGEMENT,
    "Email Link Clicked": EngagementKind.EMAIL_ENGAGEMENT,
}
_TYPE_KINDS = {
    "identify": EngagementKind.IDENTIFY,
    "group": EngagementKind.GROUP,
    "page": EngagementKind.PAGE_VIEW,
    "screen": EngagementKind.PAGE_VIEW,
}


def _event_key(name: str) -> str:
    # "Demo Requested", "demo_requested" and "demo-requested" are the same event.
    return re.sub(r"[\s_-]+", " ", name).strip().lower()


class SegmentConfig(BaseModel):
    """Which track event names mean which engagement kind (matched ignoring case and separators)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_kinds: dict[str, EngagementKind] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_KINDS)
    )

    def kind_of(self, event_name: str | None) -> EngagementKind:
        """Return the engagement kind of a track event name; OTHER when unmapped."""
        if not event_name:
            return EngagementKind.OTHER
        lookup = {_event_key(name): kind for name, kind in self.event_kinds.items()}
        return lookup.get(_event_key(event_name), EngagementKind.OTHER)


class SegmentMessage(BaseModel):
    """One Segment message, as far as Tandem reads it (unknown fields are tolerated)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: Literal["track", "identify", "group", "page", "screen", "alias"]
    message_id: str = Field(alias="messageId", min_length=1)
    event: str | None = None
    name: str | None = None  # page / screen name
    user_id: str | None = Field(None, alias="userId")
    anonymous_id: str | None = Field(None, alias="anonymousId")
    group_id: str | None = Field(None, alias="groupId")
    timestamp: AwareDatetime | None = None
    original_timestamp: AwareDatetime | None = Field(None, alias="originalTimestamp")
    received_at: AwareDatetime | None = Field(None, alias="receivedAt")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


def normalize_segment(
    body: bytes | object, *, config: SegmentConfig | None = None, received_at: datetime
) -> NormalizeResult:
    """Normalize one Segment message or a `{"batch": [...]}`; alias messages are ignored."""
    require_aware(received_at, "received_at")
    data = load_json(body)
    settings = config or SegmentConfig()
    if isinstance(data, dict) and "batch" in data:
        batch = data["batch"]
        if not isinstance(batch, list):
            raise SchemaError([ElementError(None, ("batch",), "expected a list of messages")])
        return NormalizeResult.collect(
            _normalize_message(message, index, ("batch", index), settings, received_at)
            for index, message in enumerate(batch)
        )
    return NormalizeResult.collect([_normalize_message(data, None, (), settings, received_at)])


def _normalize_message(
    raw: object, index: int | None, prefix: Loc, config: SegmentConfig, received_at: datetime
) -> Outcome:
    try:
        message = SegmentMessage.model_validate(raw)
    except ValidationError as exc:
        return validation_errors(exc, index=index, prefix=prefix)
    if message.type == "alias":
        return []
    kind = config.kind_of(message.event) if message.type == "track" else _TYPE_KINDS[message.type]
    occurred_at = (
        message.timestamp or message.original_timestamp or message.received_at or received_at
    )
    payload = _engagement(message, kind, occurred_at)
    return [
        NormalizedEvent(
            source=SOURCE,
            topic=topics.ENGAGEMENT,
            type=EventType.ENGAGEMENT_RECORDED,
            subject=payload.account_key,
            dedupe_key=message.message_id,
            occurred_at=occurred_at,
            payload=payload,
        )
    ]


def _engagement(
    message: SegmentMessage, kind: EngagementKind, occurred_at: datetime
) -> EngagementRecorded:
    traits = {**_mapping(message.context.get("traits")), **message.traits}
    company = traits.get("company")
    company_traits = _mapping(company)
    email = clean_text(traits.get("email")) or clean_text(message.properties.get("email"))
    domain = _first_text(
        company_traits.get("domain"),
        company_traits.get("website"),
        traits.get("domain") if message.type == "group" else None,
        traits.get("website") if message.type == "group" else None,
    )
    page = _mapping(message.context.get("page"))
    return EngagementRecorded(
        engagement_id=message.message_id,
        source="segment",
        kind=kind,
        name=message.event or message.name,
        account_key=account_key(domain) or account_key(email),
        company_name=_first_text(
            company_traits.get("name"),
            company if isinstance(company, str) else None,
            traits.get("name") if message.type == "group" else None,
        ),
        contact_email=email,
        contact_name=_contact_name(message, traits),
        user_id=message.user_id,
        anonymous_id=message.anonymous_id,
        url=_first_text(message.properties.get("url"), page.get("url")),
        content_title=_first_text(
            message.properties.get("content_title"),
            message.properties.get("title"),
            page.get("title") if message.type == "page" else None,
        ),
        properties=message.traits if message.type in ("identify", "group") else message.properties,
        occurred_at=occurred_at,
    )


def _contact_name(message: SegmentMessage, traits: dict[str, Any]) -> str | None:
    if message.type == "group":
        return None  # a group's traits describe the company, not a person
    full = " ".join(filter(None, (clean_text(traits.get(k)) for k in ("firstName", "lastName"))))
    return clean_text(traits.get("name")) or full or None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_text(*values: object) -> str | None:
    return next((text for text in map(clean_text, values) if text is not None), None)
