from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import canonicalize

import orjson
import pytest

from tandem_ingest.domain.errors import MalformedBodyError, OrganizationNotAllowedError, SchemaError
from tandem_ingest.domain.salesforce import (
    SalesforceConfig,
    normalize_salesforce_cdc,
    normalize_salesforce_outbound,
    outbound_message_ack,
)
from tandem_shared.events import (
    AccountUpserted,
    ActivityKind,
    ActivityLogged,
    ContactUpserted,
    DealUpserted,
    EventType,
    RecordDeleted,
    Tier,
)

ORG_18 = "00D5e000000KQ2eEAG"
CONFIG = SalesforceConfig(allowed_org_ids=frozenset({ORG_18}))


def _outbound(*sobjects: tuple[str, str, str], org: str = ORG_18) -> bytes:
    notifications = "".join(
        f"<Notification><Id>{notification_id}</Id>"
        f'<sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"{fields}</sObject></Notification>"
        for notification_id, sobject, fields in sobjects
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId><ActionId>04k</ActionId>"
        f"{notifications}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


# ---- Outbound Messages --------------------------------------------------------------------


def test_docs_outbound_message_becomes_two_deals(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    body = vendor_sample("salesforce/outbound_message_opportunity.xml")

    result = normalize_salesforce_outbound(body, config=CONFIG, received_at=received_at)

    first, second = result.events
    assert [e.dedupe_key for e in result.events] == ["04l5e00000Gx7QzAAJ", "04l5e00000Gx7R0AAJ"]
    assert first.type == EventType.DEAL_UPSERTED
    assert isinstance(first.payload, DealUpserted) and isinstance(second.payload, DealUpserted)
    assert first.payload.crm_id == "0065e00000Bq3XyAAJ"
    assert first.payload.account_crm_id == "0015e00000ZkM3hAAF"
    assert first.payload.amount == 48000.0
    assert first.payload.stage == "Proposal/Price Quote"
    assert first.payload.owner_id == "0055e000004TmiQAAS"
    assert first.occurred_at == datetime(2025, 1, 6, 15, 42, 10, tzinfo=UTC)
    assert second.payload.name == "Globex - New Logo"


def test_a_15_character_allow_list_entry_matches_the_18_character_id(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    config = SalesforceConfig(allowed_org_ids=frozenset({ORG_18[:15]}))

    result = normalize_salesforce_outbound(
        vendor_sample("salesforce/outbound_message_opportunity.xml"),
        config=config,
        received_at=received_at,
    )

    assert len(result.events) == 2


@pytest.mark.parametrize("allowed", [frozenset(), frozenset({"00D000000000001"})])
def test_an_organization_outside_the_allow_list_is_refused(
    allowed: frozenset[str], vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    with pytest.raises(OrganizationNotAllowedError, match=ORG_18) as raised:
        normalize_salesforce_outbound(
            vendor_sample("salesforce/outbound_message_opportunity.xml"),
            config=SalesforceConfig(allowed_org_ids=allowed),
            received_at=received_at,
        )

    assert raised.value.organization_id == ORG_18


def test_account_contact_lead_and_activities_map_to_their_events(received_at: datetime) -> None:
    body = _outbound(
        (
            "n1",
            "Account",
            "<sf:Id>001A</sf:Id><sf:Name>Acme</sf:Name>"
            "<sf:Website>https://www.acme.com</sf:Website>"
            "<sf:ABM_Tier__c>Tier 1</sf:ABM_Tier__c>"
            "<sf:Target_Account__c>true</sf:Target_Account__c>",
        ),
        (
            "n2",
            "Contact",
            "<sf:Id>003A</sf:Id><sf:Email>jo@acme.com</sf:Email><sf:AccountId>001A</sf:AccountId>",
        ),
        (
            "n3",
            "Lead",
            "<sf:Id>00QA</sf:Id><sf:Email>al@initech.io</sf:Email><sf:Company>Initech</sf:Company>",
        ),
        (
            "n4",
            "Task",
            "<sf:Id>00TA</sf:Id><sf:TaskSubtype>Call</sf:TaskSubtype><sf:WhatId>001A</sf:WhatId>",
        ),
        (
            "n5",
            "Event",
            "<sf:Id>00UA</sf:Id><sf:Subject>Discovery</sf:Subject><sf:OwnerId>005A</sf:OwnerId>",
        ),
    )

    events = normalize_salesforce_outbound(body, config=CONFIG, received_at=received_at).events

    account, contact, lead, task, meeting = (event.payload for event in events)
    assert [event.type for event in events] == [
        EventType.ACCOUNT_UPSERTED,
        EventType.CONTACT_UPSERTED,
        EventType.LEAD_UPSERTED,
        EventType.ACTIVITY_LOGGED,
        EventType.ACTIVITY_LOGGED,
    ]
    assert isinstance(account, AccountUpserted)
    assert (account.account_key, account.domain, account.tier) == ("acme.com", "acme.com", Tier.T1)
    assert account.target_account is True
    assert isinstance(contact, ContactUpserted) and isinstance(lead, ContactUpserted)
    assert (contact.account_key, contact.account_crm_id, contact.is_lead) == (
        "acme.com",
        "001A",
        False,
    )
    assert (lead.is_lead, lead.company_name, lead.account_key) == (True, "Initech", "initech.io")
    assert isinstance(task, ActivityLogged) and isinstance(meeting, ActivityLogged)
    assert (task.kind, task.account_crm_id) == (ActivityKind.CALL, "001A")
    assert (meeting.kind, meeting.actor_id, meeting.subject) == (
        ActivityKind.MEETING,
        "005A",
        "Discovery",
    )
    assert events[0].subject == "acme.com"


def test_nil_fields_are_none_and_unsupported_objects_are_ignored(received_at: datetime) -> None:
    body = _outbound(
        ("n1", "Account", '<sf:Id>001A</sf:Id><sf:Website xsi:nil="true"/>'),
        ("n2", "Case", "<sf:Id>500A</sf:Id>"),
    )

    result = normalize_salesforce_outbound(body, config=CONFIG, received_at=received_at)

    (event,) = result.events
    assert event.payload.changed == {"Id": "001A", "Website": None}  # type: ignore[attr-defined]
    assert event.occurred_at == received_at
    assert result.ignored == 1


def test_a_bad_notification_is_reported_with_its_path(received_at: datetime) -> None:
    body = _outbound(
        ("n1", "Opportunity", "<sf:Id>006A</sf:Id><sf:Amount>lots</sf:Amount>"),
        ("n2", "Opportunity", "<sf:Name>no id</sf:Name>"),
        ("n3", "Opportunity", "<sf:Id>006C</sf:Id>"),
    )

    result = normalize_salesforce_outbound(body, config=CONFIG, received_at=received_at)

    assert [event.dedupe_key for event in result.events] == ["n3"]
    assert [error.loc for error in result.errors] == [
        ("Notification", 0, "sObject", "Amount"),
        ("Notification", 1, "sObject", "Id"),
    ]


def test_xml_entities_are_refused(received_at: datetime) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'

    with pytest.raises(MalformedBodyError, match="not acceptable XML"):
        normalize_salesforce_outbound(bomb, config=CONFIG, received_at=received_at)


def test_broken_xml_is_malformed_and_foreign_xml_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(MalformedBodyError):
        normalize_salesforce_outbound(b"<notifications>", config=CONFIG, received_at=received_at)
    with pytest.raises(SchemaError, match="not a Salesforce Outbound Message"):
        normalize_salesforce_outbound(b"<other/>", config=CONFIG, received_at=received_at)


def test_ack_matches_the_documented_response(vendor_sample: Callable[[str], bytes]) -> None:
    expected = vendor_sample("salesforce/outbound_message_ack_response.xml")

    assert canonicalize(outbound_message_ack().decode(), strip_text=True) == canonicalize(
        expected.decode(), strip_text=True
    )
    assert b"<Ack>false</Ack>" in outbound_message_ack(ack=False)


# ---- Change Data Capture ------------------------------------------------------------------


def _cdc(entity: str, change_type: str, record_ids: list[str], **fields: Any) -> dict[str, Any]:
    header = {
        "entityName": entity,
        "recordIds": record_ids,
        "changeType": change_type,
        "transactionKey": "tx-1",
        "sequenceNumber": 2,
        "commitTimestamp": "2025-01-06T15:00:00.000Z",
        "nulledFields": fields.pop("nulled", []),
    }
    return {"payload": {"ChangeEventHeader": header, **fields}, "event": {"replayId": 7}}


def test_docs_cdc_account_create(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_salesforce_cdc(
        vendor_sample("salesforce/cdc_account_create_docs_example.json"),
        config=CONFIG,
        received_at=received_at,
    )

    (event,) = result.events
    assert event.type == EventType.ACCOUNT_UPSERTED
    assert isinstance(event.payload, AccountUpserted)
    assert (event.payload.name, event.payload.owner_id) == ("Acme", "<Owner_ID>")
    assert event.occurred_at == datetime(2021, 2, 9, 23, 17, 59, tzinfo=UTC)
    assert event.dedupe_key == "0002343d-9d90-e395-ed20-cf416ba652ad:1:<record_ID>"


def test_cdc_without_the_cometd_wrapper_is_accepted(received_at: datetime) -> None:
    bare = _cdc("Opportunity", "UPDATE", ["006A"], StageName="Closed Won")["payload"]

    (event,) = normalize_salesforce_cdc(bare, config=CONFIG, received_at=received_at).events

    assert event.payload.stage == "Closed Won"  # type: ignore[attr-defined]


def test_cdc_one_event_per_record_id_and_wildcards_skipped(received_at: datetime) -> None:
    message = _cdc("Contact", "UPDATE", ["003A", "003B", "003*"], Title="CTO")

    events = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert [event.payload.crm_id for event in events] == ["003A", "003B"]  # type: ignore[attr-defined]
    assert len({event.dedupe_key for event in events}) == 2


def test_cdc_pubsub_nulls_are_untouched_fields_but_nulled_fields_count(
    received_at: datetime,
) -> None:
    message = _cdc(
        "Contact",
        "UPDATE",
        ["003A"],
        Title=None,
        Email="jo@acme.com",
        Name={"FirstName": "Jo", "LastName": None},
        nulled=["Phone"],
    )

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    payload = event.payload
    assert isinstance(payload, ContactUpserted)
    assert payload.changed == {"Email": "jo@acme.com", "FirstName": "Jo", "Phone": None}
    assert (payload.first_name, payload.title) == ("Jo", None)


def test_cdc_delete_and_gap_events(received_at: datetime) -> None:
    messages = [
        _cdc("Account", "DELETE", ["001A"]),
        _cdc("Lead", "GAP_UPDATE", ["00QA"]),
        _cdc("Account", "GAP_OVERFLOW", []),
    ]

    result = normalize_salesforce_cdc(messages, config=CONFIG, received_at=received_at)

    deleted, gap = result.events
    assert isinstance(deleted.payload, RecordDeleted)
    assert (deleted.payload.object_type, deleted.payload.crm_id) == ("account", "001A")
    assert gap.type == EventType.LEAD_UPSERTED
    assert gap.payload.changed == {}  # type: ignore[attr-defined]
    assert result.ignored == 1


@pytest.mark.parametrize(
    ("subtype", "kind"),
    [("Call", ActivityKind.CALL), ("Email", ActivityKind.EMAIL), ("Task", ActivityKind.TASK)],
)
def test_cdc_task_subtypes(subtype: str, kind: ActivityKind, received_at: datetime) -> None:
    message = _cdc(
        "Task", "CREATE", ["00TA"], TaskSubtype=subtype, AccountId="001A", OwnerId="005A"
    )

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert isinstance(event.payload, ActivityLogged)
    assert (event.payload.kind, event.payload.account_crm_id, event.payload.actor_id) == (
        kind,
        "001A",
        "005A",
    )


def test_cdc_epoch_commit_timestamp_and_event_id_fallback(received_at: datetime) -> None:
    message = _cdc("Account", "CREATE", ["001A"])
    header = message["payload"]["ChangeEventHeader"]
    header.update(commitTimestamp=1736175600000, transactionKey=None)
    message["event"] = {"EventUuid": "uuid-1", "replayId": 7}

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert event.occurred_at == datetime(2025, 1, 6, 15, 0, tzinfo=UTC)
    assert event.dedupe_key == "Account:uuid-1:001A"


def test_cdc_errors_carry_their_paths(received_at: datetime) -> None:
    no_key = _cdc("Account", "CREATE", ["001B"])
    no_key["payload"]["ChangeEventHeader"].pop("transactionKey")
    no_key.pop("event")
    messages = [
        _cdc("Account", "CREATE", ["001A"]),
        {"payload": {"ChangeEventHeader": {"entityName": "Account"}}},
        _cdc("Account", "MOVE", ["001C"]),
        no_key,
        "not an object",
    ]

    result = normalize_salesforce_cdc(
        orjson.dumps(messages), config=CONFIG, received_at=received_at
    )

    assert len(result.events) == 1
    assert [error.loc for error in result.errors] == [
        (1, "payload", "ChangeEventHeader", "changeType"),
        (2, "payload", "ChangeEventHeader", "changeType"),
        (3, "payload", "ChangeEventHeader", "transactionKey"),
        (4,),
    ]
