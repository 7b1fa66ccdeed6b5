"""Canonical CRM events carry the record's page in the CRM (crm_url)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from tandem_ingest.domain.hubspot import HubSpotConfig, normalize_hubspot
from tandem_ingest.domain.salesforce import (
    SalesforceConfig,
    normalize_salesforce_cdc,
    normalize_salesforce_outbound,
)

ORG = "00D5e000000KQ2e"


def _hubspot(subscription: str, object_id: int, **extra: object) -> dict[str, object]:
    return {
        "objectId": object_id,
        "eventId": 1,
        "subscriptionId": 7,
        "portalId": 62515,
        "occurredAt": 1736179200000,
        "subscriptionType": subscription,
        **extra,
    }


# Records as the webhooks name them (new ones are looked up instead when fetch_records is on).
AS_SENT = HubSpotConfig(fetch_records=False)


def test_hubspot_records_link_to_their_portal_record_page(received_at: datetime) -> None:
    body = [
        _hubspot("contact.creation", 501),
        _hubspot("company.propertyChange", 9, propertyName="domain", propertyValue="acme.com"),
        _hubspot("deal.creation", 77),
        _hubspot("object.creation", 502, objectTypeId="0-1"),
    ]
    events = normalize_hubspot(
        json.dumps(body).encode(), config=AS_SENT, received_at=received_at
    ).events
    assert [e.payload.crm_url for e in events] == [  # type: ignore[attr-defined]
        "https://app.hubspot.com/contacts/62515/record/0-1/501",
        "https://app.hubspot.com/contacts/62515/record/0-2/9",
        "https://app.hubspot.com/contacts/62515/record/0-3/77",
        "https://app.hubspot.com/contacts/62515/record/0-1/502",
    ]


def test_an_eu_portal_links_to_the_eu_app_and_no_portal_means_no_link(
    received_at: datetime,
) -> None:
    eu = HubSpotConfig(app_url="https://app-eu1.hubspot.com", fetch_records=False)
    body = [_hubspot("contact.creation", 501), _hubspot("contact.creation", 502, portalId=None)]
    first, second = normalize_hubspot(
        json.dumps(body).encode(), config=eu, received_at=received_at
    ).events
    assert first.payload.crm_url == "https://app-eu1.hubspot.com/contacts/62515/record/0-1/501"  # type: ignore[attr-defined]
    assert second.payload.crm_url is None  # type: ignore[attr-defined]


def test_outbound_messages_link_to_the_lightning_page_of_the_org_they_name(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    body = vendor_sample("salesforce/outbound_message_opportunity.xml")
    config = SalesforceConfig(allowed_org_ids=frozenset({ORG}))
    first, _ = normalize_salesforce_outbound(body, config=config, received_at=received_at).events
    assert first.payload.crm_url == (  # type: ignore[attr-defined]
        "https://acme.lightning.force.com/lightning/r/Opportunity/0065e00000Bq3XyAAJ/view"
    )


def test_cdc_links_through_the_configured_instance_url(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    body = vendor_sample("salesforce/cdc_account_create_docs_example.json")
    bare = SalesforceConfig(allowed_org_ids=frozenset({ORG}))
    (unlinked,) = normalize_salesforce_cdc(body, config=bare, received_at=received_at).events
    assert unlinked.payload.crm_url is None  # type: ignore[attr-defined]
    linked = bare.model_copy(update={"instance_url": "https://acme.my.salesforce.com"})
    (event,) = normalize_salesforce_cdc(body, config=linked, received_at=received_at).events
    assert event.payload.crm_url == (  # type: ignore[attr-defined]
        "https://acme.lightning.force.com/lightning/r/Account/%3Crecord_ID%3E/view"
    )


def test_an_outbound_message_naming_a_foreign_host_gets_no_link(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    body = vendor_sample("salesforce/outbound_message_opportunity.xml").replace(
        b"https://acme.my.salesforce.com", b"https://acme.example"
    )
    config = SalesforceConfig(allowed_org_ids=frozenset({ORG}))
    first, _ = normalize_salesforce_outbound(body, config=config, received_at=received_at).events
    assert first.payload.crm_url is None  # type: ignore[attr-defined]
    configured = config.model_copy(update={"instance_url": "https://crm-proxy.acme.example"})
    linked, _ = normalize_salesforce_outbound(
        body, config=configured, received_at=received_at
    ).events
    assert linked.payload.crm_url == (  # type: ignore[attr-defined]
        "https://crm-proxy.acme.example/lightning/r/Opportunity/0065e00000Bq3XyAAJ/view"
    )
