"""Salesforce Outbound Messages (SOAP) and Change Data Capture (JSON) -> canonical CRM events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem_ingest.domain.errors import MalformedBodyError, OrganizationNotAllowedError, SchemaError
from tandem_ingest.domain.normalized import (
    ElementError,
    Loc,
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
from tandem_ingest.domain.salesforce_records import (
    SOURCE,
    RecordChange,
    SalesforceConfig,
    is_supported,
    record_events,
)

__all__ = [
    "SOURCE",
    "SalesforceConfig",
    "normalize_salesforce_cdc",
    "normalize_salesforce_outbound",
    "outbound_message_ack",
]

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
_OM = f"{{{OUTBOUND_NS}}}"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"

_ACK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>{ack}</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"""


def outbound_message_ack(*, ack: bool = True) -> bytes:
    """Return the SOAP notificationsResponse; Salesforce retries until it gets Ack true."""
    return _ACK.format(ack="true" if ack else "false").encode()


# ---- Outbound Messages --------------------------------------------------------------------


def normalize_salesforce_outbound(
    body: bytes, *, config: SalesforceConfig, received_at: datetime
) -> NormalizeResult:
    """Normalize an Outbound Message; raise OrganizationNotAllowedError for a foreign org."""
    require_aware(received_at, "received_at")
    notifications = _parse_notifications(body)
    organization_id = clean_text(notifications.findtext(f"{_OM}OrganizationId"))
    if not config.allows(organization_id):
        raise OrganizationNotAllowedError(organization_id)
    # The org's URLs, e.g. https://acme.my.salesforce.com/services/Soap/c/60.0/00D...
    instance_url = clean_text(notifications.findtext(f"{_OM}EnterpriseUrl")) or clean_text(
        notifications.findtext(f"{_OM}PartnerUrl")
    )
    return NormalizeResult.collect(
        _notification(element, index, config, received_at, instance_url)
        for index, element in enumerate(notifications.findall(f"{_OM}Notification"))
    )


def _parse_notifications(body: bytes) -> Element:
    try:
        root: Element = fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedBodyError(f"body is not acceptable XML: {exc}") from exc
    notifications = (
        root if root.tag == f"{_OM}notifications" else root.find(f".//{_OM}notifications")
    )
    if notifications is None:
        raise SchemaError(
            [ElementError(None, ("notifications",), "not a Salesforce Outbound Message")]
        )
    return notifications


def _notification(
    element: Element,
    index: int,
    config: SalesforceConfig,
    received_at: datetime,
    instance_url: str | None,
) -> Outcome:
    prefix: Loc = ("Notification", index)
    notification_id = clean_text(element.findtext(f"{_OM}Id"))
    sobject = element.find(f"{_OM}sObject")
    if notification_id is None:
        return [ElementError(index, (*prefix, "Id"), "missing")]
    if sobject is None:
        return [ElementError(index, (*prefix, "sObject"), "missing")]
    sobject_type = (sobject.get(f"{_XSI}type") or "").rpartition(":")[2]
    if not is_supported(sobject_type):
        return []
    fields = _sobject_fields(sobject)
    record_id = clean_text(fields.get("Id"))
    if record_id is None:
        return [ElementError(index, (*prefix, "sObject", "Id"), "missing")]
    try:
        occurred_at = _instant(fields.get("LastModifiedDate"), received_at)
    except ValueError as exc:
        return [ElementError(index, (*prefix, "sObject", "LastModifiedDate"), str(exc))]
    change = RecordChange(
        sobject=sobject_type,
        record_id=record_id,
        fields=fields,
        occurred_at=occurred_at,
        dedupe_key=notification_id,
        index=index,
        loc_of=lambda name: (*prefix, "sObject", name),
        instance_url=instance_url,
    )
    return record_events(change, config=config, deleted=False)


def _sobject_fields(sobject: Element) -> dict[str, str | None]:
    fields: dict[str, str | None] = {}
    for child in sobject:
        if len(child):  # a nested record: Outbound Messages carry only the object's own fields
            continue
        name = child.tag.rpartition("}")[2]
        fields[name] = None if child.get(f"{_XSI}nil") == "true" else (child.text or "")
    return fields


def _instant(value: object, default: datetime) -> datetime:
    return default if clean_text(value) is None else parse_instant(value, numeric_unit="ms")


# ---- Change Data Capture ------------------------------------------------------------------


class ChangeEventHeader(BaseModel):
    """The header of a Change Data Capture event, as far as Tandem reads it."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    entity_name: str = Field(alias="entityName")
    record_ids: list[str] = Field(default_factory=list, alias="recordIds")
    change_type: str = Field(alias="changeType")
    transaction_key: str | None = Field(None, alias="transactionKey")
    sequence_number: str | None = Field(None, alias="sequenceNumber")
    commit_timestamp: str | None = Field(None, alias="commitTimestamp")
    nulled_fields: list[str] = Field(default_factory=list, alias="nulledFields")


_UPSERTS = frozenset({"CREATE", "UPDATE", "UNDELETE"})
_DELETE = "DELETE"
_GAP = "GAP_"
_OVERFLOW = "GAP_OVERFLOW"


def normalize_salesforce_cdc(
    body: bytes | object, *, config: SalesforceConfig, received_at: datetime
) -> NormalizeResult:
    """Normalize one Change Data Capture or Platform Event message, or a JSON array of them."""
    require_aware(received_at, "received_at")
    data = load_json(body)
    if isinstance(data, list):
        return NormalizeResult.collect(
            _message(message, index, (index,), config, received_at)
            for index, message in enumerate(data)
        )
    return NormalizeResult.collect([_message(data, None, (), config, received_at)])


def _message(
    raw: object, index: int | None, prefix: Loc, config: SalesforceConfig, received_at: datetime
) -> Outcome:
    if not isinstance(raw, dict):
        return [ElementError(index, prefix, "expected a change event object")]
    # A CometD message wraps the event: {"channel": "/data/AccountChangeEvent", "data": {...}}.
    channel = clean_text(raw.get("channel")) or ""
    message: dict[str, Any] = raw
    if isinstance(raw.get("data"), dict):
        message, prefix = raw["data"], (*prefix, "data")
    payload, payload_prefix = _unwrap(message, prefix)
    if "ChangeEventHeader" not in payload and channel.startswith(_PLATFORM_CHANNEL):
        name = channel.removeprefix(_PLATFORM_CHANNEL)
        found = PlatformEvent(name, message, payload, index, payload_prefix)
        return _platform_event(found, config, received_at)
    return _change_event(message, payload, index, payload_prefix, config, received_at)


def _change_event(
    message: dict[str, Any],
    payload: dict[str, Any],
    index: int | None,
    prefix: Loc,
    config: SalesforceConfig,
    received_at: datetime,
) -> Outcome:
    header_loc: Loc = (*prefix, "ChangeEventHeader")
    try:
        header = ChangeEventHeader.model_validate(payload.get("ChangeEventHeader"))
    except ValidationError as exc:
        return validation_errors(exc, index=index, prefix=header_loc)
    change_type = header.change_type.upper()
    if change_type == _OVERFLOW or not is_supported(header.entity_name):
        return []  # an overflow names no record: reconciling it is a resync's job
    base_type = change_type.removeprefix(_GAP)
    if base_type not in _UPSERTS and base_type != _DELETE:
        return [ElementError(index, (*header_loc, "changeType"), f"unknown {change_type!r}")]
    try:
        occurred_at = _instant(header.commit_timestamp, received_at)
    except ValueError as exc:
        return [ElementError(index, (*header_loc, "commitTimestamp"), str(exc))]
    event_id = _event_id(message.get("event"), payload)
    if not (header.transaction_key and header.sequence_number) and event_id is None:
        reason = "no transactionKey and sequenceNumber, nor an event id, to deduplicate on"
        return [ElementError(index, (*header_loc, "transactionKey"), reason)]
    fields = _changed_fields(payload, header)
    outcome: list[NormalizedEvent | Lookup | ElementError] = []
    for record_id in header.record_ids:
        if record_id.endswith("*"):  # a wildcard: "every record of this prefix", none by name
            continue
        change = RecordChange(
            sobject=header.entity_name,
            record_id=record_id,
            fields=fields,
            occurred_at=occurred_at,
            dedupe_key=_dedupe_key(header, event_id, record_id),
            index=index,
            loc_of=lambda name: (*prefix, name),
        )
        outcome.extend(record_events(change, config=config, deleted=base_type == _DELETE))
    return outcome


# ---- Platform Events ----------------------------------------------------------------------

_PLATFORM_CHANNEL = "/event/"
# Fields every Platform Event has: about the event, not the record.
_EVENT_FIELDS = frozenset({"CreatedDate", "CreatedById", "EventUuid", "ReplayId"})


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    """A custom Platform Event as delivered: its API name, message, payload and place."""

    name: str  # e.g. Opportunity_Change__e
    message: dict[str, Any]
    payload: dict[str, Any]
    index: int | None
    prefix: Loc  # the payload's path in the body


def _platform_event(
    event: PlatformEvent, config: SalesforceConfig, received_at: datetime
) -> Outcome:
    mapping = config.platform_events.get(event.name)
    if mapping is None:
        return []  # a Platform Event this installation does not map: nothing Tandem uses
    index, payload, prefix = event.index, event.payload, event.prefix
    record_id = clean_text(payload.get(mapping.record_id_field))
    if record_id is None:
        return [ElementError(index, (*prefix, mapping.record_id_field), "missing")]
    event_id = _event_id(event.message.get("event"), payload)
    if event_id is None:
        return [ElementError(index, (*prefix, "EventUuid"), "no EventUuid nor replayId")]
    try:
        occurred_at = _instant(payload.get("CreatedDate"), received_at)
    except ValueError as exc:
        return [ElementError(index, (*prefix, "CreatedDate"), str(exc))]
    excluded = _EVENT_FIELDS | {mapping.record_id_field, mapping.deleted_field}
    fields = {
        mapping.fields.get(name, name): value
        for name, value in payload.items()
        if value is not None and name not in excluded
    }
    event_field = {sobject_field: name for name, sobject_field in mapping.fields.items()}
    change = RecordChange(
        sobject=mapping.sobject,
        record_id=record_id,
        fields=fields,
        occurred_at=occurred_at,
        dedupe_key=f"{event.name}:{event_id}",
        index=index,
        loc_of=lambda name: (*prefix, event_field.get(name, name)),
    )
    deleted = bool(mapping.deleted_field) and _is_true(payload.get(mapping.deleted_field or ""))
    return record_events(change, config=config, deleted=deleted)


def _is_true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _unwrap(message: dict[str, Any], prefix: Loc) -> tuple[dict[str, Any], Loc]:
    payload = message.get("payload")
    if isinstance(payload, dict):  # CometD / Streaming API shape: {schema, payload, event}
        return payload, (*prefix, "payload")
    return message, prefix  # Pub/Sub API, decoded: the payload itself


def _dedupe_key(header: ChangeEventHeader, event_id: str | None, record_id: str) -> str:
    # One transaction's change events are numbered: that pair names a change in every channel.
    if header.transaction_key and header.sequence_number:
        return f"{header.transaction_key}:{header.sequence_number}:{record_id}"
    return f"{header.entity_name}:{event_id}:{record_id}"


def _event_id(event: object, payload: dict[str, Any]) -> str | None:
    meta = event if isinstance(event, dict) else {}
    event_uuid = clean_text(meta.get("EventUuid")) or clean_text(payload.get("EventUuid"))
    if event_uuid:
        return event_uuid
    replay_id = clean_text(meta.get("replayId"))
    return f"replay:{replay_id}" if replay_id else None


def _changed_fields(payload: dict[str, Any], header: ChangeEventHeader) -> dict[str, object]:
    # Pub/Sub sends every field, null when untouched: only non-null and explicitly nulled count.
    fields: dict[str, object] = {}
    for name, value in payload.items():
        if name == "ChangeEventHeader" or value is None:
            continue
        if isinstance(value, dict):  # compound fields such as a contact's Name
            fields.update({k: v for k, v in value.items() if v is not None})
        else:
            fields[name] = value
    fields.update(dict.fromkeys(header.nulled_fields))
    return fields
