"""HubSpot activity webhooks become lookups; fetched records become events (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tandem_ingest.domain.hubspot import HubSpotConfig, normalize_hubspot
from tandem_ingest.domain.hubspot_records import (
    ACTIVITY,
    COMPANY,
    CONTACT,
    CONTACT_RECORD,
    Fetched,
    association_reads,
    build_event,
    company_reads,
    contact_reads,
    first_reads,
    record_lookup,
)
from tandem_ingest.domain.normalized import Lookup
from tandem_shared.events import (
    AccountUpserted,
    ActivityKind,
    ActivityLogged,
    ContactUpserted,
    EventType,
    RecordDeleted,
    Tier,
)

OCCURRED_MS = 1736179200000  # 2025-01-06T16:00:00Z
OCCURRED = datetime(2025, 1, 6, 16, 0, tzinfo=UTC)
CALL = "0-48"


def _object(action: str, type_id: str = CALL, object_id: int = 901, **extra: Any) -> dict[str, Any]:
    return {
        "objectId": object_id,
        "objectTypeId": type_id,
        "subscriptionType": f"object.{action}",
        "eventId": 5,
        "subscriptionId": 77,
        "portalId": 33,
        "occurredAt": OCCURRED_MS,
        **extra,
    }


def _lookups(*elements: dict[str, Any], **config: Any) -> list[Lookup]:
    result = normalize_hubspot(list(elements), config=HubSpotConfig(**config), received_at=OCCURRED)
    assert result.events == () and result.errors == ()
    return list(result.lookups)


@pytest.mark.parametrize("type_id", ["0-48", "0-49", "0-47", "0-46", "0-27"])
def test_a_new_activity_of_each_type_waits_for_the_crm_api(type_id: str) -> None:
    [lookup] = _lookups(_object("creation", type_id))
    assert lookup.kind == ACTIVITY and lookup.source == "/ingest/hubspot"
    assert lookup.request == {"type": type_id, "id": "901", "occurred_at": OCCURRED.isoformat()}


def test_only_property_changes_that_change_the_event_are_fetched() -> None:
    watched = _object("propertyChange", propertyName="hubspot_owner_id", propertyValue="7")
    other = _object("propertyChange", propertyName="hs_call_body", propertyValue="notes")
    result = normalize_hubspot([watched, other], received_at=OCCURRED)
    assert [lookup.request["id"] for lookup in result.lookups] == ["901"]
    assert result.ignored == 1


def test_an_association_change_fetches_the_activity_at_either_end() -> None:
    from_call = _object("associationChange", fromObjectId=901, toObjectTypeId="0-1", toObjectId=55)
    to_call = {
        **_object("associationChange", type_id="0-1", fromObjectId=55, toObjectTypeId=CALL),
        "toObjectId": 902,
    }
    del to_call["objectId"]
    to_deal = _object("associationChange", fromObjectId=904, toObjectTypeId="0-3", toObjectId=8)
    removed = _object(
        "associationChange",
        fromObjectId=903,
        toObjectTypeId="0-1",
        toObjectId=55,
        associationRemoved=True,
    )
    result = normalize_hubspot([from_call, to_call, to_deal, removed], received_at=OCCURRED)
    assert [(lk.request["type"], lk.request["id"]) for lk in result.lookups] == [
        (CALL, "901"),
        (CALL, "902"),
    ]
    assert result.ignored == 2
    assert len({lk.dedupe_key for lk in result.lookups}) == 2


def test_a_deleted_activity_is_a_tombstone_at_once() -> None:
    result = normalize_hubspot([_object("deletion")], received_at=OCCURRED)
    [event] = result.events
    assert event.type == EventType.RECORD_DELETED
    assert isinstance(event.payload, RecordDeleted)
    assert (event.payload.object_type, event.payload.crm_id) == ("activity", "901")


def test_without_fetching_activity_is_ignored_and_new_contacts_are_events() -> None:
    created = {**_object("creation", "0-1"), "objectId": 5}
    result = normalize_hubspot(
        [_object("creation"), created],
        config=HubSpotConfig(fetch_records=False),
        received_at=OCCURRED,
    )
    assert result.lookups == () and result.ignored == 1
    assert [e.type for e in result.events] == [EventType.CONTACT_UPSERTED]


def _call_fetched(*, direction: str | None = None) -> tuple[Lookup, Fetched]:
    [lookup] = _lookups(_object("creation", "0-49" if direction else CALL))
    type_id = lookup.request["type"]
    fetched = Fetched(
        records={
            (type_id, "901"): {
                "hubspot_owner_id": "hs-owner-7",
                "hs_timestamp": "2025-01-06T16:05:00.250Z",
                "hs_call_title": "Intro call",
                "hs_email_subject": "Hello",
                "hs_email_direction": direction,
            },
            (CONTACT, "55"): {"email": "dana@gmail.com", "associatedcompanyid": "77"},
            (CONTACT, "56"): {"email": None, "associatedcompanyid": None},
            (COMPANY, "77"): {"domain": "www.Acme.com", "name": "Acme"},
        },
        associations={(type_id, "901", CONTACT): ["56", "55"]},
    )
    return lookup, fetched


def test_a_fetched_call_names_rep_time_contact_and_account() -> None:
    lookup, fetched = _call_fetched()
    event = build_event(lookup, fetched, property_map={})
    assert event is not None and event.type == EventType.ACTIVITY_LOGGED
    payload = event.payload
    assert isinstance(payload, ActivityLogged)
    assert (payload.activity_id, payload.kind, payload.subject) == (
        "901",
        ActivityKind.CALL,
        "Intro call",
    )
    assert payload.actor_id == "hs-owner-7"
    assert payload.occurred_at == datetime(2025, 1, 6, 16, 5, 0, 250000, tzinfo=UTC)
    assert payload.contact_email == "dana@gmail.com"  # the first associated contact with an email
    # The contact's primary company gives the account (a personal mailbox would give none).
    assert (payload.account_key, payload.account_crm_id) == ("acme.com", "77")
    assert event.subject == "acme.com" and event.event_id == lookup.event_id


def test_an_incoming_email_is_not_a_touch_and_a_gone_record_makes_nothing() -> None:
    lookup, fetched = _call_fetched(direction="INCOMING_EMAIL")
    event = build_event(lookup, fetched, property_map={})
    assert event is not None and event.payload.kind is ActivityKind.OTHER  # type: ignore[attr-defined]
    assert build_event(lookup, Fetched(), property_map={}) is None


def test_the_reads_go_in_three_rounds() -> None:
    lookup, fetched = _call_fetched()
    contact = record_lookup(dedupe_key="k", type_id=CONTACT, object_id="60", occurred_at=OCCURRED)
    lookups = [lookup, contact]
    assert first_reads(lookups) == {CALL: {"901"}, CONTACT: {"60"}}
    assert association_reads(lookups) == {(CALL, CONTACT): {"901"}, (CALL, COMPANY): {"901"}}
    assert contact_reads(lookups, Fetched(associations=fetched.associations)) == {"55", "56"}
    partial = Fetched(
        records={
            (CONTACT, "55"): {"associatedcompanyid": "77"},
            (CONTACT, "60"): {"associatedcompanyid": "78"},
        },
        associations=fetched.associations,
    )
    assert company_reads(lookups, partial) == {"77", "78"}


def test_a_new_contact_gets_its_email_and_its_company_domain() -> None:
    page = "https://app.hubspot.com/contacts/62515/record/0-1/60"
    lookup = record_lookup(
        dedupe_key="k", type_id=CONTACT, object_id="60", occurred_at=OCCURRED, crm_url=page
    )
    assert lookup.kind == CONTACT_RECORD
    fetched = Fetched(
        records={
            (CONTACT, "60"): {
                "email": "Lee@Initech.io",
                "associatedcompanyid": "78",
                "firstname": "Lee",
            },
            (COMPANY, "78"): {"domain": "initech.com"},
        }
    )
    event = build_event(
        lookup,
        fetched,
        property_map={"email": "email", "abm_tier": "tier", "firstname": "first_name"},
    )
    assert event is not None and isinstance(event.payload, ContactUpserted)
    assert event.payload.email == "Lee@Initech.io" and event.payload.first_name == "Lee"
    assert event.payload.account_key == "initech.com"  # the company's domain, not the email's
    assert event.payload.crm_url == page  # known from the webhook's portal
    assert event.payload.changed == {
        "email": "Lee@Initech.io",
        "associatedcompanyid": "78",
        "firstname": "Lee",
    }


@pytest.mark.parametrize(("tier", "expected"), [("tier_1", Tier.T1), ("gold", None)])
def test_a_new_company_gets_its_domain(tier: str, expected: Tier | None) -> None:
    lookup = record_lookup(dedupe_key="k", type_id=COMPANY, object_id="78", occurred_at=OCCURRED)
    fetched = Fetched(records={(COMPANY, "78"): {"domain": "initech.com", "abm_tier": tier}})
    event = build_event(lookup, fetched, property_map={"domain": "domain", "abm_tier": "tier"})
    assert event is not None and isinstance(event.payload, AccountUpserted)
    # A tier Tandem cannot read is left out; the rest of the record still counts.
    assert (event.payload.account_key, event.payload.tier) == ("initech.com", expected)
    assert event.type == EventType.ACCOUNT_UPSERTED and event.occurred_at == OCCURRED
