from __future__ import annotations

import pytest

from tandem_shared.crm_links import (
    hubspot_record_url,
    lightning_base_url,
    salesforce_org_url,
    salesforce_record_url,
)


def test_hubspot_record_pages_name_the_portal_and_the_object_type() -> None:
    contact = hubspot_record_url(portal_id="62515", object_type_id="0-1", record_id="501")
    assert contact == "https://app.hubspot.com/contacts/62515/record/0-1/501"
    company = hubspot_record_url(
        portal_id="62515",
        object_type_id="0-2",
        record_id="9",
        app_url="https://app-eu1.hubspot.com/",
    )
    assert company == "https://app-eu1.hubspot.com/contacts/62515/record/0-2/9"


@pytest.mark.parametrize("portal_id", [None, "", "62515/../x", "abc"])
def test_no_hubspot_link_without_a_numeric_portal(portal_id: str | None) -> None:
    assert hubspot_record_url(portal_id=portal_id, object_type_id="0-1", record_id="1") is None


@pytest.mark.parametrize(
    ("instance", "lightning"),
    [
        (
            "https://acme.my.salesforce.com/services/Soap/c/61.0/00D5e",
            "https://acme.lightning.force.com",
        ),
        (
            "https://ACME--uat.sandbox.my.salesforce.com",
            "https://acme--uat.sandbox.lightning.force.com",
        ),
        (
            "https://acme-dev-ed.develop.my.salesforce.com",
            "https://acme-dev-ed.develop.lightning.force.com",
        ),
        ("https://acme.lightning.force.com", "https://acme.lightning.force.com"),
        ("https://crm.acme.example:8443/path", "https://crm.acme.example:8443"),
        ("http://acme.my.salesforce.com", None),
        ("acme.my.salesforce.com", None),
        (None, None),
    ],
)
def test_the_lightning_origin_comes_from_the_instance_url(
    instance: str | None, lightning: str | None
) -> None:
    assert lightning_base_url(instance) == lightning


def test_salesforce_record_pages_are_lightning_record_views() -> None:
    url = salesforce_record_url(
        instance_url="https://acme.my.salesforce.com", sobject="Opportunity", record_id="006A"
    )
    assert url == "https://acme.lightning.force.com/lightning/r/Opportunity/006A/view"
    assert salesforce_record_url(instance_url=None, sobject="Lead", record_id="00Q") is None
    odd = salesforce_record_url(
        instance_url="https://acme.my.salesforce.com", sobject="Lead", record_id="00Q/../x"
    )
    assert odd == "https://acme.lightning.force.com/lightning/r/Lead/00Q%2F..%2Fx/view"


@pytest.mark.parametrize(
    ("named", "trusted"),
    [
        ("https://acme.my.salesforce.com/services/Soap/c/61.0/00D5e", True),
        ("https://acme--uat.sandbox.my.salesforce.com", True),
        ("https://acme.lightning.force.com", True),
        ("https://salesforce.com.evil.example/services/Soap", False),
        ("http://acme.my.salesforce.com", False),
        ("", False),
    ],
)
def test_only_salesforce_hosts_named_in_a_message_are_trusted(named: str, trusted: bool) -> None:
    assert (salesforce_org_url(named) == named) is trusted
