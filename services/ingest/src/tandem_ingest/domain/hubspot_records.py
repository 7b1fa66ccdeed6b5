"""HubSpot's thin webhooks filled in: what to fetch from the CRM API, and the events it makes.

A webhook names an object by type and id. For activities (calls, emails, meetings, notes, tasks)
and new contacts and companies, the event needs more: the owner, the time, the associated
contacts and companies, an email, a domain. The ingest worker reads those with the CRM API's
batch endpoints in three rounds (the objects and their associations, then the associated
contacts, then the companies), and these pure functions say what each round reads and build
the events from what came back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tandem_ingest.domain.crm_fields import build_payload, map_properties
from tandem_ingest.domain.normalized import Lookup, NormalizedEvent
from tandem_ingest.domain.parsing import clean_text, parse_instant
from tandem_shared import topics
from tandem_shared.accounts import account_key
from tandem_shared.events import (
    AccountUpserted,
    ActivityKind,
    ActivityLogged,
    ContactUpserted,
    CrmSystem,
    EventType,
    Model,
)

SOURCE = "/ingest/hubspot"

ACTIVITY = "hubspot.activity"
CONTACT_RECORD = "hubspot.contact"
COMPANY_RECORD = "hubspot.company"

CONTACT = "0-1"
COMPANY = "0-2"
DEAL = "0-3"


@dataclass(frozen=True, slots=True)
class ActivityType:
    """A HubSpot activity object: its CRM API name, its kind and its subject property."""

    name: str
    kind: ActivityKind
    title: str | None


# Object type ids from HubSpot's object API guide (developers.hubspot.com/docs/guides/crm/
# using-object-apis): generic `object.*` webhooks name the object by these.
ACTIVITY_TYPES: dict[str, ActivityType] = {
    "0-48": ActivityType("calls", ActivityKind.CALL, "hs_call_title"),
    "0-49": ActivityType("emails", ActivityKind.EMAIL, "hs_email_subject"),
    "0-47": ActivityType("meetings", ActivityKind.MEETING, "hs_meeting_title"),
    "0-46": ActivityType("notes", ActivityKind.NOTE, None),
    "0-27": ActivityType("tasks", ActivityKind.TASK, "hs_task_subject"),
}
OBJECT_NAMES: dict[str, str] = {
    CONTACT: "contacts",
    COMPANY: "companies",
    DEAL: "deals",
    **{type_id: t.name for type_id, t in ACTIVITY_TYPES.items()},
}
# Property changes that change the event (who, when, which way): others are not worth a fetch.
WATCHED_PROPERTIES = frozenset(
    {"hubspot_owner_id", "hs_timestamp", "hs_email_direction", "hs_task_status"}
)
ACTIVITY_PROPERTIES = (
    "hubspot_owner_id",
    "hs_timestamp",
    "hs_email_direction",
    "hs_task_status",
    *(t.title for t in ACTIVITY_TYPES.values() if t.title),
)
CONTACT_PROPERTIES = ("email", "associatedcompanyid", "hubspot_owner_id")
COMPANY_PROPERTIES = ("domain", "name", "hubspot_owner_id")
_INCOMING_EMAIL = "INCOMING_EMAIL"  # the prospect wrote: not a touch by the rep


def activity_lookup(
    *, dedupe_key: str, type_id: str, object_id: str, occurred_at: datetime
) -> Lookup:
    """Return the lookup of one activity named by a webhook."""
    request = {"type": type_id, "id": object_id, "occurred_at": occurred_at.isoformat()}
    return Lookup(SOURCE, dedupe_key, ACTIVITY, request)


def record_lookup(
    *,
    dedupe_key: str,
    type_id: str,
    object_id: str,
    occurred_at: datetime,
    crm_url: str | None = None,
) -> Lookup:
    """Return the lookup of a new contact or company: the webhook carries none of its fields
    (but its portal, so the record's page is known now)."""
    kind = CONTACT_RECORD if type_id == CONTACT else COMPANY_RECORD
    request = {
        "type": type_id,
        "id": object_id,
        "occurred_at": occurred_at.isoformat(),
        "crm_url": crm_url,
    }
    return Lookup(SOURCE, dedupe_key, kind, request)


Properties = Mapping[str, str | None]


@dataclass(slots=True)
class Fetched:
    """What the CRM API returned: records by (type id, id), associations by (from, id, to)."""

    records: dict[tuple[str, str], Properties] = field(default_factory=dict)
    associations: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def record(self, type_id: str, object_id: str | None) -> Properties | None:
        """Return a fetched record's properties, or None when it is not there (deleted)."""
        return None if object_id is None else self.records.get((type_id, object_id))

    def associated(self, type_id: str, object_id: str, to_type: str) -> list[str]:
        """Return the ids of the `to_type` records associated with an object, in HubSpot's order."""
        return self.associations.get((type_id, object_id, to_type), [])


def _target(lookup: Lookup) -> tuple[str, str]:
    return str(lookup.request["type"]), str(lookup.request["id"])


def first_reads(lookups: Iterable[Lookup]) -> dict[str, set[str]]:
    """Round 1: the objects the webhooks named, by type id."""
    reads: dict[str, set[str]] = {}
    for lookup in lookups:
        type_id, object_id = _target(lookup)
        reads.setdefault(type_id, set()).add(object_id)
    return reads


def association_reads(lookups: Iterable[Lookup]) -> dict[tuple[str, str], set[str]]:
    """Round 1 too: each activity's contacts and companies, by (from type, to type)."""
    reads: dict[tuple[str, str], set[str]] = {}
    for lookup in lookups:
        if lookup.kind == ACTIVITY:
            type_id, object_id = _target(lookup)
            for to_type in (CONTACT, COMPANY):
                reads.setdefault((type_id, to_type), set()).add(object_id)
    return reads


def contact_reads(lookups: Iterable[Lookup], fetched: Fetched) -> set[str]:
    """Round 2: the contacts associated with the activities, not fetched yet."""
    wanted = {
        contact
        for lookup in lookups
        if lookup.kind == ACTIVITY
        for contact in fetched.associated(*_target(lookup), CONTACT)
    }
    return {c for c in wanted if fetched.record(CONTACT, c) is None}


def company_reads(lookups: Iterable[Lookup], fetched: Fetched) -> set[str]:
    """Round 3: the activities' companies and the contacts' primary companies, not fetched yet."""
    wanted: set[str] = set()
    for lookup in lookups:
        type_id, object_id = _target(lookup)
        if lookup.kind == ACTIVITY:
            wanted.update(fetched.associated(type_id, object_id, COMPANY))
            contacts = fetched.associated(type_id, object_id, CONTACT)
        else:
            contacts = [object_id] if type_id == CONTACT else []
        for contact in contacts:
            company = clean_text(
                (fetched.record(CONTACT, contact) or {}).get("associatedcompanyid")
            )
            if company:
                wanted.add(company)
    return {c for c in wanted if fetched.record(COMPANY, c) is None}


def build_event(
    lookup: Lookup, fetched: Fetched, *, property_map: Mapping[str, str]
) -> NormalizedEvent | None:
    """Return the event a lookup becomes, or None when its record is gone from HubSpot."""
    type_id, object_id = _target(lookup)
    record = fetched.record(type_id, object_id)
    if record is None:
        return None
    occurred_at = datetime.fromisoformat(str(lookup.request["occurred_at"]))
    payload: Model
    if lookup.kind == ACTIVITY:
        payload = _activity(type_id, object_id, record, fetched, occurred_at)
        event_type = EventType.ACTIVITY_LOGGED
        occurred_at = payload.occurred_at
    elif lookup.kind == CONTACT_RECORD:
        payload = _upserted(ContactUpserted, lookup, record, occurred_at, property_map, fetched)
        event_type = EventType.CONTACT_UPSERTED
    else:
        payload = _upserted(AccountUpserted, lookup, record, occurred_at, property_map, fetched)
        event_type = EventType.ACCOUNT_UPSERTED
    return NormalizedEvent(
        source=lookup.source,
        topic=topics.CRM,
        type=event_type,
        subject=getattr(payload, "account_key", None),
        dedupe_key=lookup.dedupe_key,
        occurred_at=occurred_at,
        payload=payload,
    )


def _activity(
    type_id: str, object_id: str, record: Properties, fetched: Fetched, fallback: datetime
) -> ActivityLogged:
    activity = ACTIVITY_TYPES[type_id]
    kind = activity.kind
    if kind is ActivityKind.EMAIL and record.get("hs_email_direction") == _INCOMING_EMAIL:
        kind = ActivityKind.OTHER
    contacts = fetched.associated(type_id, object_id, CONTACT)
    email = _first(clean_text((fetched.record(CONTACT, c) or {}).get("email")) for c in contacts)
    companies = list(fetched.associated(type_id, object_id, COMPANY))
    companies += [
        company
        for c in contacts
        if (company := clean_text((fetched.record(CONTACT, c) or {}).get("associatedcompanyid")))
    ]
    domain_of = {c: clean_text((fetched.record(COMPANY, c) or {}).get("domain")) for c in companies}
    with_domain = _first(c for c in companies if domain_of[c] and account_key(domain_of[c]))
    company = with_domain or _first(companies)
    domain = domain_of.get(company) if company else None
    return ActivityLogged(
        crm=CrmSystem.HUBSPOT,
        activity_id=object_id,
        kind=kind,
        account_key=account_key(domain) if domain else (account_key(email) if email else None),
        account_crm_id=company,
        contact_email=email,
        actor_id=clean_text(record.get("hubspot_owner_id")),
        subject=clean_text(record.get(activity.title)) if activity.title else None,
        occurred_at=_timestamp(record.get("hs_timestamp")) or fallback,
    )


def _upserted(
    model: type[ContactUpserted] | type[AccountUpserted],
    lookup: Lookup,
    record: Properties,
    occurred_at: datetime,
    property_map: Mapping[str, str],
    fetched: Fetched,
) -> Model:
    properties = {name: value for name, value in record.items() if value not in (None, "")}
    mapped = map_properties(properties, field_map=property_map, model=model)
    # A value HubSpot holds but Tandem cannot read (a tier named "gold") is left out, not fatal:
    # the rest of the record is still worth having.
    for name in mapped.errors:
        properties.pop(name)
    mapped = map_properties(properties, field_map=property_map, model=model)
    if model is ContactUpserted:
        company = clean_text(properties.get("associatedcompanyid"))
        domain = clean_text((fetched.record(COMPANY, company) or {}).get("domain"))
        if domain and account_key(domain):
            mapped.values["account_key"] = account_key(domain)
    base: dict[str, Any] = {
        "crm": CrmSystem.HUBSPOT,
        "crm_id": _target(lookup)[1],
        "crm_url": lookup.request.get("crm_url"),
        "changed": properties,
        "occurred_at": occurred_at,
    }
    payload = build_payload(model, base=base, mapped=mapped, index=None, loc_of=lambda n: (n,))
    if isinstance(payload, list):  # only the base is left; it always validates
        return model.model_validate(base)
    return payload


def _timestamp(value: object) -> datetime | None:
    if clean_text(value) is None:
        return None
    try:
        return parse_instant(value, numeric_unit="ms")
    except ValueError:
        return None


def _first(values: Iterable[str | None]) -> str | None:
    return next((v for v in values if v), None)
