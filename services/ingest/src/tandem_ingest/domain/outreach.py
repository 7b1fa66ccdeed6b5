"""Outreach webhooks (JSON:API: `{"data": {type, id, attributes, relationships}, "meta":
{deliveredAt, eventName}}`) -> sales activity.

A delivery is one event about one resource, whose `attributes` hold only what was created or
changed and whose relationships name the rep (user) and the prospect by id. Calls made,
mailings delivered (and replied to), completed tasks and Kaia meeting recordings become
`ActivityLogged`; the rep's email and the prospect's email and account domain are read from
Outreach's API by the lookup worker (`OutreachRecords` below), since the webhook has only ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.normalized import (
    ElementError,
    Lookup,
    NormalizedEvent,
    NormalizeResult,
    Outcome,
)
from tandem_ingest.domain.parsing import (
    clean_text,
    load_json,
    parse_instant,
    require_aware,
    validation_errors,
)
from tandem_shared import topics
from tandem_shared.accounts import account_key
from tandem_shared.events import ActivityKind, ActivityLogged, CrmSystem, EventType

SOURCE = "/ingest/outreach"
ACTIVITY = "outreach.activity"

# (resource type, action) -> the activity it is, and the attributes that say when it happened.
_ACTIVITIES: dict[tuple[str, str], tuple[ActivityKind, tuple[str, ...]]] = {
    ("call", "created"): (
        ActivityKind.CALL,
        ("completedAt", "answeredAt", "dialedAt", "createdAt"),
    ),
    ("mailing", "delivered"): (ActivityKind.EMAIL, ("deliveredAt",)),
    # The prospect answered: kept on the timeline, but it is not a touch by the rep.
    ("mailing", "replied"): (ActivityKind.OTHER, ("repliedAt",)),
    ("task", "completed"): (ActivityKind.TASK, ("completedAt",)),
    ("kaiaRecording", "created"): (ActivityKind.MEETING, ("startedAt", "createdAt")),
}
_TASK_ACTIONS = {
    "call": ActivityKind.CALL,
    "email": ActivityKind.EMAIL,
    "in_person": ActivityKind.MEETING,
    "meeting": ActivityKind.MEETING,
}
_USER_RELATIONS = ("user", "owner", "creator")


class OutreachConfig(BaseModel):
    """An Outreach source's settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: CrmSystem  # the CRM Outreach syncs with: the events' `crm`
    # Read the rep's and the prospect's emails from Outreach's API (TANDEM_OUTREACH__...).
    fetch_records: bool = True


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    type: str = Field(min_length=1)
    id: str = Field(min_length=1)
    attributes: dict[str, Any] = Field(default_factory=dict)
    relationships: dict[str, Any] = Field(default_factory=dict)

    def related(self, *names: str, kind: str | None = None) -> str | None:
        """Return the id of the first to-one relationship of these names (of type `kind`)."""
        for name in names:
            link = self.relationships.get(name)
            ref = link.get("data") if isinstance(link, dict) else None
            if not isinstance(ref, dict) or ref.get("id") is None:
                continue
            if kind is None or ref.get("type") == kind:
                return str(ref["id"])
        return None


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_name: str = Field(alias="eventName", pattern=r"^[A-Za-z]+\.[A-Za-z]+$")
    delivered_at: str | None = Field(None, alias="deliveredAt")


class OutreachWebhook(BaseModel):
    """One Outreach delivery, as far as Tandem reads it."""

    model_config = ConfigDict(extra="ignore")

    data: _Resource
    meta: _Meta


def normalize_outreach(
    body: bytes | object, *, config: OutreachConfig, received_at: datetime
) -> NormalizeResult:
    """Normalize one Outreach delivery; resources and actions that are not activity are ignored."""
    require_aware(received_at, "received_at")
    data = load_json(body)
    if not isinstance(data, dict):
        raise SchemaError([ElementError(None, (), "expected a JSON:API object with data and meta")])
    try:
        webhook = OutreachWebhook.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(validation_errors(exc, index=None, prefix=())) from exc
    return NormalizeResult.collect([_activity(webhook, config, received_at)])


def _activity(webhook: OutreachWebhook, config: OutreachConfig, received_at: datetime) -> Outcome:
    resource, (_, action) = webhook.data, webhook.meta.event_name.split(".")
    mapping = _ACTIVITIES.get((resource.type, action))
    if mapping is None:
        return []
    kind, time_attributes = mapping
    if resource.type == "task":
        task_action = str(resource.attributes.get("action") or resource.attributes.get("taskType"))
        kind = _TASK_ACTIONS.get(task_action.lower(), ActivityKind.TASK)
    try:
        occurred_at = _occurred_at(resource, time_attributes, webhook.meta) or received_at
    except ValueError as exc:
        return [ElementError(None, ("data", "attributes"), f"unreadable time: {exc}")]
    request = {
        "activity_id": f"outreach:{resource.type}:{resource.id}",
        "kind": kind.value,
        "occurred_at": occurred_at.isoformat(),
        "subject": clean_text(resource.attributes.get("subject")),
        "crm": config.crm.value,
        "user": resource.related(*_USER_RELATIONS),
        "prospect": resource.related("prospect") or resource.related("subject", kind="prospect"),
        "account": resource.related("account") or resource.related("subject", kind="account"),
    }
    lookup = Lookup(SOURCE, f"{resource.type}:{resource.id}:{action}", ACTIVITY, request)
    if config.fetch_records:
        return [lookup]
    return [build_outreach_event(lookup, OutreachRecords())]


def _occurred_at(resource: _Resource, names: tuple[str, ...], meta: _Meta) -> datetime | None:
    for value in [*(resource.attributes.get(n) for n in names), meta.delivered_at]:
        if clean_text(value) is not None:
            return parse_instant(value, numeric_unit="s")
    return None


@dataclass(slots=True)
class OutreachRecords:
    """What Outreach's API returned: users' emails, prospects' emails and accounts' domains."""

    user_emails: dict[str, str | None] = field(default_factory=dict)
    prospects: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # email, acct
    account_domains: dict[str, str | None] = field(default_factory=dict)


def outreach_reads(lookups: list[Lookup]) -> tuple[set[str], set[str], set[str]]:
    """Return the user, prospect and account ids the lookups name."""
    users = {str(u) for lk in lookups if (u := lk.request.get("user"))}
    prospects = {str(p) for lk in lookups if (p := lk.request.get("prospect"))}
    accounts = {str(a) for lk in lookups if (a := lk.request.get("account"))}
    return users, prospects, accounts


def build_outreach_event(lookup: Lookup, records: OutreachRecords) -> NormalizedEvent:
    """Return the activity event of a lookup with what Outreach's API said (or nothing)."""
    request = lookup.request
    user, prospect = request.get("user"), request.get("prospect")
    email, account = (
        records.prospects.get(str(prospect), (None, None)) if prospect else (None, None)
    )
    account = account or request.get("account")
    domain = records.account_domains.get(str(account)) if account else None
    key = (account_key(domain) if domain else None) or (account_key(email) if email else None)
    # Unresolved reps keep Outreach's id: the directory can list it among their crm_user_ids.
    rep = records.user_emails.get(str(user)) if user else None
    occurred_at = datetime.fromisoformat(str(request["occurred_at"]))
    payload = ActivityLogged(
        crm=CrmSystem(request["crm"]),
        activity_id=str(request["activity_id"]),
        kind=ActivityKind(request["kind"]),
        account_key=key,
        contact_email=email.lower() if email else None,
        actor_id=rep.lower() if rep else (f"outreach:user:{user}" if user else None),
        subject=request.get("subject"),
        source="outreach",
        occurred_at=occurred_at,
    )
    return NormalizedEvent(
        source=lookup.source,
        topic=topics.CRM,
        type=EventType.ACTIVITY_LOGGED,
        subject=key,
        dedupe_key=lookup.dedupe_key,
        occurred_at=occurred_at,
        payload=payload,
    )
