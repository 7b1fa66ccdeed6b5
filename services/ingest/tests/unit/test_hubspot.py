from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tandem_ingest.domain.errors import MalformedBodyError, SchemaError
from tandem_ingest.domain.hubspot import HubSpotConfig, normalize_hubspot
from tandem_shared import topics
from tandem_shared.events import (
    AccountUpserted,
    ContactUpserted,
    DealUpserted,
    EventType,
    RecordDeleted,
    RecordsMerged,
    Tier,
)

OCCURRED_MS = 1736179200000  # 2025-01-06T16:00:00Z


def _change(object_type: str, name: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "objectId": 501,
        "propertyName": name,
        "propertyValue": value,
        "eventId": 1,
        "subscriptionId": 7,
        "portalId": 33,
        "occurredAt": OCCURRED_MS,
        "subscriptionType": f"{object_type}.propertyChange",
        **extra,
    }


def test_docs_batch_becomes_contact_events(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_hubspot(
        vendor_sample("hubspot/webhook_batch_docs_example.json"),
        config=HubSpotConfig(fetch_records=False),  # as without a CRM API token
        received_at=received_at,
    )

    changed, created = result.events
    assert result.errors == ()
    assert changed.type == created.type == EventType.CONTACT_UPSERTED
    assert changed.topic == topics.CRM
    assert isinstance(changed.payload, ContactUpserted)
    assert changed.payload.crm_id == "1246965"
    assert changed.payload.lifecycle_stage == "subscriber"
    assert changed.payload.changed == {"lifecyclestage": "subscriber"}
    assert changed.occurred_at == datetime(2016, 5, 2, 19, 11, 47, 945000, tzinfo=UTC)
    assert created.payload.changed == {}
    assert changed.subject is None  # no email in the change: the router resolves by CRM id


def test_subscription_type_spelling_is_accepted(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_hubspot(
        vendor_sample("hubspot/webhook_v1_docs_example_body.json"), received_at=received_at
    )

    # A new contact's webhook has no field of it: its event waits for the CRM API.
    assert result.events == ()
    (lookup,) = result.lookups
    assert lookup.kind == "hubspot.contact"
    assert lookup.request == {
        "type": "0-1",
        "id": "123",
        "occurred_at": "2019-07-26T04:00:00+00:00",
        "crm_url": "https://app.hubspot.com/contacts/62515/record/0-1/123",
    }


@pytest.mark.parametrize(
    ("value", "tier"),
    [("tier_1", Tier.T1), ("Tier 1", Tier.T1), ("1", Tier.T1), ("tier_3", Tier.T3)],
)
def test_tier_properties_map_to_the_canonical_tier(
    value: str, tier: Tier, received_at: datetime
) -> None:
    result = normalize_hubspot(
        [_change("company", "hs_ideal_customer_profile", value)], received_at=received_at
    )

    payload = result.events[0].payload
    assert isinstance(payload, AccountUpserted)
    assert payload.tier is tier


def test_company_domain_change_sets_the_account_key(received_at: datetime) -> None:
    result = normalize_hubspot(
        [_change("company", "domain", "WWW.Acme.com")], received_at=received_at
    )

    event = result.events[0]
    assert event.type == EventType.ACCOUNT_UPSERTED
    assert event.subject == "acme.com"
    assert event.payload.domain == "acme.com"  # type: ignore[attr-defined]


def test_contact_email_change_sets_email_and_account_key(received_at: datetime) -> None:
    result = normalize_hubspot(
        [_change("contact", "email", "dana@globex.com")], received_at=received_at
    )

    payload = result.events[0].payload
    assert isinstance(payload, ContactUpserted)
    assert (payload.email, payload.account_key) == ("dana@globex.com", "globex.com")
    assert result.events[0].subject == "globex.com"


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("hubspot_owner_id", "42", "owner_id", "42"),
        ("hs_is_target_account", "true", "target_account", True),
        ("hs_is_target_account", "false", "target_account", False),
        ("name", "Acme Inc", "name", "Acme Inc"),
    ],
)
def test_company_properties_map_to_canonical_fields(
    name: str, value: str, field: str, expected: object, received_at: datetime
) -> None:
    result = normalize_hubspot([_change("company", name, value)], received_at=received_at)

    assert getattr(result.events[0].payload, field) == expected


def test_deal_stage_and_amount_map_to_the_deal(received_at: datetime) -> None:
    result = normalize_hubspot(
        [
            _change("deal", "dealstage", "contractsent"),
            _change("deal", "amount", "48000.50", occurredAt=OCCURRED_MS + 1),
        ],
        received_at=received_at,
    )

    stage, amount = (event.payload for event in result.events)
    assert isinstance(stage, DealUpserted) and isinstance(amount, DealUpserted)
    assert stage.stage == "contractsent"
    assert amount.amount == 48000.5


def test_an_unmapped_property_is_kept_in_changed_only(received_at: datetime) -> None:
    config = HubSpotConfig(property_map={"region__c": "territory"})

    result = normalize_hubspot(
        [_change("company", "region__c", "EMEA"), _change("company", "industry", "Retail")],
        config=config,
        received_at=received_at,
    )

    territory, industry = (event.payload for event in result.events)
    assert territory.territory == "EMEA"  # type: ignore[attr-defined]
    assert industry.changed == {"industry": "Retail"}  # type: ignore[attr-defined]
    assert industry.tier is None  # type: ignore[attr-defined]


def test_dedupe_key_ignores_event_id_and_distinguishes_properties(received_at: datetime) -> None:
    first = _change("contact", "email", "a@acme.com", eventId=1)
    redelivered = {**first, "eventId": 99, "attemptNumber": 1}
    other_property = _change("contact", "firstname", "Ann", eventId=1)

    result = normalize_hubspot([first, redelivered, other_property], received_at=received_at)

    keys = [event.dedupe_key for event in result.events]
    assert keys[0] == keys[1] != keys[2]
    assert keys[0] == f"33:7:501:contact.propertyChange:{OCCURRED_MS}:email"
    assert result.events[0].event_id == result.events[1].event_id


def test_deletion_becomes_record_deleted(received_at: datetime) -> None:
    body = [{"objectId": 9, "subscriptionType": "company.deletion", "occurredAt": OCCURRED_MS}]

    (event,) = normalize_hubspot(body, received_at=received_at).events

    assert event.type == EventType.RECORD_DELETED
    assert isinstance(event.payload, RecordDeleted)
    assert (event.payload.object_type, event.payload.crm_id) == ("account", "9")


def test_merge_names_the_winner_and_the_merged_records(received_at: datetime) -> None:
    body = [
        {
            "objectId": 100,
            "subscriptionType": "contact.merge",
            "primaryObjectId": 100,
            "mergedObjectIds": [101, 102],
            "newObjectId": 100,
            "occurredAt": OCCURRED_MS,
        }
    ]

    (event,) = normalize_hubspot(body, received_at=received_at).events

    assert isinstance(event.payload, RecordsMerged)
    assert event.payload.winner_id == "100"
    assert event.payload.merged_ids == ["101", "102"]


def test_generic_object_subscriptions_use_the_object_type_id(received_at: datetime) -> None:
    body = [{"objectId": 5, "subscriptionType": "object.creation", "objectTypeId": "0-3"}]

    (event,) = normalize_hubspot(body, received_at=received_at).events

    assert event.type == EventType.DEAL_UPSERTED
    assert event.occurred_at == received_at  # no occurredAt: the reception instant stands in


def test_association_changes_and_other_objects_are_ignored_without_error(
    received_at: datetime,
) -> None:
    body = [
        {"objectId": 1, "subscriptionType": "contact.associationChange", "occurredAt": OCCURRED_MS},
        {"objectId": 2, "subscriptionType": "ticket.creation", "occurredAt": OCCURRED_MS},
        _change("contact", "email", "a@acme.com"),
    ]

    result = normalize_hubspot(body, received_at=received_at)

    assert len(result.events) == 1
    assert (result.errors, result.ignored) == ((), 2)


def test_a_bad_element_is_reported_with_its_index_and_path(received_at: datetime) -> None:
    body = [
        _change("company", "domain", "acme.com"),
        {"subscriptionType": "company.creation"},
        _change("company", "abm_tier", "gold"),
        {"objectId": 3, "subscriptionType": "contact.propertyChange"},
    ]

    result = normalize_hubspot(body, received_at=received_at)

    assert len(result.events) == 1
    assert [(e.index, e.loc) for e in result.errors] == [
        (1, (1, "objectId")),
        (2, (2, "propertyValue")),
        (3, (3, "propertyName")),
    ]
    assert "unrecognised tier 'gold'" in result.errors[1].message


def test_a_body_that_is_not_an_array_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(SchemaError, match="expected a JSON array"):
        normalize_hubspot(b'{"objectId": 1}', received_at=received_at)


def test_a_batch_with_only_bad_elements_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(SchemaError) as raised:
        normalize_hubspot([{"objectId": 1}], received_at=received_at)

    assert raised.value.errors[0].loc == (0, "subscriptionType")


def test_invalid_json_is_a_malformed_body(received_at: datetime) -> None:
    with pytest.raises(MalformedBodyError):
        normalize_hubspot(b"[{", received_at=received_at)


def test_a_naive_reception_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_hubspot([], received_at=datetime(2025, 1, 1))
