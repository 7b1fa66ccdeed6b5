"""HubSpot webhook batches (a JSON array of events) -> canonical CRM events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from tandem_ingest.domain.crm_fields import build_payload, map_properties
from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.hubspot_records import (
    ACTIVITY_TYPES,
    WATCHED_PROPERTIES,
    activity_lookup,
    record_lookup,
)
from tandem_ingest.domain.normalized import ElementError, NormalizedEvent, NormalizeResult, Outcome
from tandem_ingest.domain.parsing import from_epoch, load_json, require_aware, validation_errors
from tandem_shared import topics
from tandem_shared.crm_links import HUBSPOT_APP_URL, HUBSPOT_OBJECT_TYPE_IDS, hubspot_record_url
from tandem_shared.events import (
    AccountUpserted,
    ContactUpserted,
    CrmSystem,
    DealUpserted,
    EventType,
    Model,
    RecordDeleted,
    RecordsMerged,
)

SOURCE = "/ingest/hubspot"

DEFAULT_PROPERTY_MAP: dict[str, str] = {
    "hubspot_owner_id": "owner_id",
    "abm_tier": "tier",
    "hs_ideal_customer_profile": "tier",
    "hs_is_target_account": "target_account",
    "lifecyclestage": "lifecycle_stage",
    "dealstage": "stage",
    "amount": "amount",
    "deal_currency_code": "currency",
    "hs_is_closed": "is_closed",
    "hs_is_closed_won": "is_won",
    "domain": "domain",
    "website": "domain",
    "name": "name",
    "dealname": "name",
    "email": "email",
    "company": "company_name",
    "firstname": "first_name",
    "lastname": "last_name",
    "jobtitle": "title",
    "associatedcompanyid": "account_crm_id",
}


class HubSpotConfig(BaseModel):
    """How HubSpot properties map onto canonical fields; every change is also kept in `changed`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    property_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROPERTY_MAP))
    # Where record links point: https://app-eu1.hubspot.com for accounts in the EU data centre.
    app_url: str = Field(default=HUBSPOT_APP_URL, pattern=r"^https://")
    # Fill thin webhooks in from the CRM API (TANDEM_HUBSPOT__ACCESS_TOKEN): activities, and new
    # contacts and companies. Without a token the service turns it off (refused in prod).
    fetch_records: bool = True


class HubSpotEvent(BaseModel):
    """One element of a HubSpot webhook batch, as far as Tandem reads it."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    # Association changes name both ends instead: the "from" end stands for the object.
    object_id: str = Field(validation_alias=AliasChoices("objectId", "fromObjectId"), min_length=1)
    type: str = Field(validation_alias=AliasChoices("subscriptionType", "eventType"))
    object_type_id: str | None = Field(
        None, validation_alias=AliasChoices("objectTypeId", "fromObjectTypeId")
    )
    to_object_type_id: str | None = Field(None, alias="toObjectTypeId")
    to_object_id: str | None = Field(None, alias="toObjectId")
    association_removed: bool = Field(False, alias="associationRemoved")
    occurred_at: int | None = Field(None, alias="occurredAt")
    portal_id: str | None = Field(None, alias="portalId")
    subscription_id: str | None = Field(None, alias="subscriptionId")
    property_name: str | None = Field(None, alias="propertyName")
    property_value: str | None = Field(None, alias="propertyValue")
    primary_object_id: str | None = Field(None, alias="primaryObjectId")
    merged_object_ids: list[str] = Field(default_factory=list, alias="mergedObjectIds")
    new_object_id: str | None = Field(None, alias="newObjectId")

    def dedupe_key(self) -> str:
        """Return a key unique per change: HubSpot's eventId alone is not."""
        parts = (
            self.portal_id,
            self.subscription_id,
            self.object_id,
            self.type,
            self.occurred_at,
            self.property_name,
        )
        key = ":".join("" if part is None else str(part) for part in parts)
        # Appended only when present, so the keys (and event ids) of other events never change.
        return key if self.to_object_id is None else f"{key}:{self.to_object_id}"


# HubSpot object -> (canonical model, event type, canonical object type)
_OBJECTS: dict[str, tuple[type[Model], EventType, str]] = {
    "contact": (ContactUpserted, EventType.CONTACT_UPSERTED, "contact"),
    "company": (AccountUpserted, EventType.ACCOUNT_UPSERTED, "account"),
    "deal": (DealUpserted, EventType.DEAL_UPSERTED, "deal"),
}
# Generic "object.*" subscriptions name the object by its type id.
_OBJECT_TYPE_IDS = {"0-1": "contact", "0-2": "company", "0-3": "deal"}
_UPSERT_ACTIONS = frozenset({"creation", "restore", "propertyChange"})
_ACCOUNT_ENDS = frozenset({"0-1", "0-2"})  # contacts and companies: they say whom it touched
_DELETE_ACTIONS = frozenset({"deletion", "privacyDeletion"})


def normalize_hubspot(
    body: bytes | object, *, config: HubSpotConfig | None = None, received_at: datetime
) -> NormalizeResult:
    """Normalize a HubSpot webhook batch; activities and new records become CRM API lookups.

    Association changes of contacts, companies and deals, and other objects, are ignored.
    """
    require_aware(received_at, "received_at")
    data = load_json(body)
    if not isinstance(data, list):
        raise SchemaError([ElementError(None, (), "expected a JSON array of HubSpot events")])
    settings = config or HubSpotConfig()
    return NormalizeResult.collect(
        _normalize_element(element, index, settings, received_at)
        for index, element in enumerate(data)
    )


def _normalize_element(
    element: object, index: int, config: HubSpotConfig, received_at: datetime
) -> Outcome:
    try:
        event = HubSpotEvent.model_validate(element)
    except ValidationError as exc:
        return validation_errors(exc, index=index, prefix=(index,))
    object_name, _, action = event.type.partition(".")
    occurred_at = received_at if event.occurred_at is None else from_epoch(event.occurred_at, "ms")
    if object_name == "object":
        if event.object_type_id in ACTIVITY_TYPES or event.to_object_type_id in ACTIVITY_TYPES:
            return _activity(event, action, occurred_at, config)
        object_name = _OBJECT_TYPE_IDS.get(event.object_type_id or "", "")
    if object_name not in _OBJECTS:
        return []
    object_type = _OBJECTS[object_name][2]
    if action == "creation" and config.fetch_records and object_name != "deal":
        type_id = next(t for t, name in _OBJECT_TYPE_IDS.items() if name == object_name)
        return [
            record_lookup(
                dedupe_key=event.dedupe_key(),
                type_id=type_id,
                object_id=event.object_id,
                occurred_at=occurred_at,
                crm_url=hubspot_record_url(
                    portal_id=event.portal_id,
                    object_type_id=type_id,
                    record_id=event.object_id,
                    app_url=config.app_url,
                ),
            )
        ]
    if action in _UPSERT_ACTIONS:
        return _upsert(event, object_name, index, config, occurred_at)
    if action in _DELETE_ACTIONS:
        deleted = RecordDeleted(
            crm=CrmSystem.HUBSPOT,
            object_type=object_type,
            crm_id=event.object_id,
            occurred_at=occurred_at,
        )
        return [_event(event, EventType.RECORD_DELETED, deleted, occurred_at)]
    if action == "merge":
        merged = _merged(event, object_type, occurred_at)
        return [_event(event, EventType.RECORDS_MERGED, merged, occurred_at)]
    return []


def _activity(
    event: HubSpotEvent, action: str, occurred_at: datetime, config: HubSpotConfig
) -> Outcome:
    """A call, email, meeting, note or task: its event waits for the CRM API (ids only here)."""
    type_id, object_id = event.object_type_id or "", event.object_id
    if action == "associationChange":
        if event.association_removed:
            return []  # the activity's earlier event stands; Tandem keeps no association state
        if type_id not in ACTIVITY_TYPES:  # a contact/company -> activity change: the other end
            other = type_id
            type_id, object_id = event.to_object_type_id or "", event.to_object_id or ""
        else:
            other = event.to_object_type_id or ""
        if other not in _ACCOUNT_ENDS:
            return []  # a deal or another activity tells nothing about whom it touched
    elif action in _DELETE_ACTIONS:
        deleted = RecordDeleted(
            crm=CrmSystem.HUBSPOT, object_type="activity", crm_id=object_id, occurred_at=occurred_at
        )
        return [_event(event, EventType.RECORD_DELETED, deleted, occurred_at)]
    elif (
        action == "propertyChange" and event.property_name not in WATCHED_PROPERTIES
    ) or action not in _UPSERT_ACTIONS:
        return []
    if not config.fetch_records or not object_id:
        return []
    lookup = activity_lookup(
        dedupe_key=event.dedupe_key(), type_id=type_id, object_id=object_id, occurred_at=occurred_at
    )
    return [lookup]


def _upsert(
    event: HubSpotEvent, object_name: str, index: int, config: HubSpotConfig, occurred_at: datetime
) -> Outcome:
    model, event_type, _ = _OBJECTS[object_name]
    changed: dict[str, Any] = {}
    if event.type.endswith(".propertyChange"):
        if not event.property_name:
            return [ElementError(index, (index, "propertyName"), "required for a property change")]
        changed[event.property_name] = event.property_value
    payload = build_payload(
        model,
        base={
            "crm": CrmSystem.HUBSPOT,
            "crm_id": event.object_id,
            "crm_url": hubspot_record_url(
                portal_id=event.portal_id,
                object_type_id=HUBSPOT_OBJECT_TYPE_IDS[object_name],
                record_id=event.object_id,
                app_url=config.app_url,
            ),
            "changed": changed,
            "occurred_at": occurred_at,
        },
        mapped=map_properties(changed, field_map=config.property_map, model=model),
        index=index,
        loc_of=lambda _: (index, "propertyValue"),
    )
    if isinstance(payload, list):
        return payload
    return [_event(event, event_type, payload, occurred_at)]


def _merged(event: HubSpotEvent, object_type: str, occurred_at: datetime) -> RecordsMerged:
    winner = event.new_object_id or event.primary_object_id or event.object_id
    losers = [*event.merged_object_ids, event.primary_object_id or "", event.object_id]
    merged = list(dict.fromkeys(i for i in losers if i and i != winner))
    return RecordsMerged(
        crm=CrmSystem.HUBSPOT,
        object_type=object_type,
        winner_id=winner,
        merged_ids=merged,
        occurred_at=occurred_at,
    )


def _event(
    event: HubSpotEvent, event_type: EventType, payload: Model, occurred_at: datetime
) -> NormalizedEvent:
    return NormalizedEvent(
        source=SOURCE,
        topic=topics.CRM,
        type=event_type,
        subject=getattr(payload, "account_key", None),
        dedupe_key=event.dedupe_key(),
        occurred_at=occurred_at,
        payload=payload,
    )
