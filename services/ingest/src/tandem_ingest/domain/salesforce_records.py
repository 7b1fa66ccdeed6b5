"""Salesforce records (sObjects) -> canonical CRM events, shared by Outbound Messages and CDC."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tandem_ingest.domain.crm_fields import build_payload, map_properties
from tandem_ingest.domain.normalized import Loc, NormalizedEvent, Outcome
from tandem_ingest.domain.parsing import clean_text
from tandem_shared import topics
from tandem_shared.crm_links import salesforce_org_url, salesforce_record_url
from tandem_shared.events import (
    AccountUpserted,
    ActivityKind,
    ActivityLogged,
    ContactUpserted,
    CrmSystem,
    DealUpserted,
    EventType,
    Model,
    RecordDeleted,
)

SOURCE = "/ingest/salesforce"

DEFAULT_FIELD_MAP: dict[str, str] = {
    "OwnerId": "owner_id",
    "Name": "name",
    "Website": "domain",
    "StageName": "stage",
    "Amount": "amount",
    "CurrencyIsoCode": "currency",
    "IsClosed": "is_closed",
    "IsWon": "is_won",
    "AccountId": "account_crm_id",
    "Email": "email",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Title": "title",
    "Company": "company_name",
    "Status": "lifecycle_stage",
    # Custom fields of a typical ABM set-up; rename them in the configuration.
    "ABM_Tier__c": "tier",
    "Target_Account__c": "target_account",
    "Territory__c": "territory",
}


SObject = Literal["Account", "Contact", "Lead", "Opportunity", "Task", "Event"]


class PlatformEventMapping(BaseModel):
    """Which record a custom Platform Event is about: its fields carry no standard header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sobject: SObject
    record_id_field: str = Field(min_length=1)  # e.g. Opportunity_Id__c
    # Event field -> sObject field (e.g. Stage__c: StageName); others keep their own names.
    fields: dict[str, str] = Field(default_factory=dict)
    deleted_field: str | None = None  # a checkbox field that, when true, means "deleted"


class SalesforceConfig(BaseModel):
    """Which organizations may call, and how Salesforce fields map onto canonical fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # 15- or 18-character organization ids; empty refuses every Outbound Message.
    allowed_org_ids: frozenset[str] = frozenset()
    field_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_FIELD_MAP))
    # Platform Event API name (e.g. Opportunity_Change__e) -> the record it describes.
    platform_events: dict[str, PlatformEventMapping] = Field(default_factory=dict)
    # The org's URL (https://<MyDomain>.my.salesforce.com) for record links; Outbound Messages
    # carry it themselves, Change Data Capture does not.
    instance_url: str | None = Field(default=None, pattern=r"^https://")

    def allows(self, organization_id: str | None) -> bool:
        """Return True when the organization is on the allow-list (15-character ids compared)."""
        if not organization_id:
            return False
        return organization_id[:15] in {org[:15] for org in self.allowed_org_ids}


@dataclass(frozen=True, slots=True)
class _Kind:
    model: type[Model]
    event_type: EventType
    object_type: str
    is_lead: bool = False


_KINDS: dict[str, _Kind] = {
    "Account": _Kind(AccountUpserted, EventType.ACCOUNT_UPSERTED, "account"),
    "Contact": _Kind(ContactUpserted, EventType.CONTACT_UPSERTED, "contact"),
    "Lead": _Kind(ContactUpserted, EventType.LEAD_UPSERTED, "lead", is_lead=True),
    "Opportunity": _Kind(DealUpserted, EventType.DEAL_UPSERTED, "deal"),
    "Task": _Kind(ActivityLogged, EventType.ACTIVITY_LOGGED, "activity"),
    "Event": _Kind(ActivityLogged, EventType.ACTIVITY_LOGGED, "activity"),
}
_ACTIVITY_KINDS = {
    "call": ActivityKind.CALL,
    "email": ActivityKind.EMAIL,
    "listemail": ActivityKind.EMAIL,
    "meeting": ActivityKind.MEETING,
    "event": ActivityKind.MEETING,
    "task": ActivityKind.TASK,
}
_ACCOUNT_ID_PREFIX = "001"


def is_supported(sobject: str) -> bool:
    """Return True for the sObject types Tandem turns into events."""
    return sobject in _KINDS


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One Salesforce record as delivered: its fields and where it sits in the body."""

    sobject: str
    record_id: str
    fields: Mapping[str, object]
    occurred_at: datetime
    dedupe_key: str
    index: int | None
    loc_of: Callable[[str], Loc]  # the path of a field in the body, for errors
    instance_url: str | None = None  # the org's URL the delivery names, if it names one


def record_events(change: RecordChange, *, config: SalesforceConfig, deleted: bool) -> Outcome:
    """Turn one changed record into its canonical event, or the errors that prevent it."""
    kind = _KINDS.get(change.sobject)
    if kind is None:
        return []
    if deleted:
        tombstone = RecordDeleted(
            crm=CrmSystem.SALESFORCE,
            object_type=kind.object_type,
            crm_id=change.record_id,
            occurred_at=change.occurred_at,
        )
        return [_event(change, EventType.RECORD_DELETED, tombstone)]
    if kind.model is ActivityLogged:
        return [_event(change, kind.event_type, _activity(change))]
    mapped = map_properties(change.fields, field_map=config.field_map, model=kind.model)
    base: dict[str, object] = {
        "crm": CrmSystem.SALESFORCE,
        "crm_id": change.record_id,
        "crm_url": salesforce_record_url(
            instance_url=config.instance_url or salesforce_org_url(change.instance_url),
            sobject=change.sobject,
            record_id=change.record_id,
        ),
        "changed": dict(change.fields),
        "occurred_at": change.occurred_at,
    }
    if kind.is_lead:
        base["is_lead"] = True
    payload = build_payload(
        kind.model, base=base, mapped=mapped, index=change.index, loc_of=change.loc_of
    )
    if isinstance(payload, list):
        return payload
    return [_event(change, kind.event_type, payload)]


def _activity(change: RecordChange) -> ActivityLogged:
    fields = change.fields
    what_id = clean_text(fields.get("WhatId"))
    account_id = clean_text(fields.get("AccountId")) or (
        what_id if what_id and what_id.startswith(_ACCOUNT_ID_PREFIX) else None
    )
    return ActivityLogged(
        crm=CrmSystem.SALESFORCE,
        activity_id=change.record_id,
        kind=_activity_kind(change.sobject, fields),
        account_crm_id=account_id,
        actor_id=clean_text(fields.get("OwnerId")),
        subject=clean_text(fields.get("Subject")),
        occurred_at=change.occurred_at,
    )


def _activity_kind(sobject: str, fields: Mapping[str, object]) -> ActivityKind:
    if sobject == "Event":
        return ActivityKind.MEETING
    for name in ("TaskSubtype", "Type"):
        label = (clean_text(fields.get(name)) or "").lower().replace(" ", "")
        if label in _ACTIVITY_KINDS:
            return _ACTIVITY_KINDS[label]
    return ActivityKind.TASK


def _event(change: RecordChange, event_type: EventType, payload: Model) -> NormalizedEvent:
    return NormalizedEvent(
        source=SOURCE,
        topic=topics.CRM,
        type=event_type,
        subject=getattr(payload, "account_key", None),
        dedupe_key=change.dedupe_key,
        occurred_at=change.occurred_at,
        payload=payload,
    )
