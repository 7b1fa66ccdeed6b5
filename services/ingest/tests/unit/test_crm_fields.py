from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tandem_ingest.domain.crm_fields import build_payload, map_properties, parse_tier
from tandem_shared.events import AccountUpserted, ContactUpserted, DealUpserted, Tier

OCCURRED = datetime(2025, 1, 6, tzinfo=UTC)
FIELD_MAP = {
    "abm_tier": "tier",
    "domain": "domain",
    "email": "email",
    "amount": "amount",
    "hs_is_target_account": "target_account",
}


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ("tier_1", Tier.T1),
        ("Tier 1", Tier.T1),
        ("1", Tier.T1),
        ("TIER-2", Tier.T2),
        ("t3", Tier.T3),
        ("3.0", Tier.T3),
        ("", None),
        (None, None),
    ],
)
def test_parse_tier_accepts_the_usual_spellings(value: str | None, tier: Tier | None) -> None:
    assert parse_tier(value) == tier


@pytest.mark.parametrize("value", ["gold", "4", "tier 12"])
def test_parse_tier_refuses_unknown_values(value: str) -> None:
    with pytest.raises(ValueError, match="unrecognised tier"):
        parse_tier(value)


def test_map_properties_keeps_only_fields_of_the_model_and_derives_the_account_key() -> None:
    mapped = map_properties(
        {"Domain": "https://www.Acme.co.uk/about", "email": "x@y.com", "other": "1"},
        field_map=FIELD_MAP,
        model=AccountUpserted,
    )

    assert mapped.values == {"domain": "acme.co.uk", "account_key": "acme.co.uk"}
    assert mapped.origin == {"domain": "Domain"}


def test_map_properties_takes_the_account_key_of_a_business_email_only() -> None:
    work = map_properties({"email": "Jo@Acme.com"}, field_map=FIELD_MAP, model=ContactUpserted)
    personal = map_properties({"email": "jo@gmail.com"}, field_map=FIELD_MAP, model=ContactUpserted)

    assert work.values["account_key"] == "acme.com"
    assert personal.values["account_key"] is None


def test_map_properties_reports_the_crm_property_of_a_bad_value() -> None:
    mapped = map_properties({"abm_tier": "gold"}, field_map=FIELD_MAP, model=AccountUpserted)

    assert set(mapped.errors) == {"abm_tier"}


def test_build_payload_points_validation_errors_at_the_crm_property() -> None:
    mapped = map_properties({"amount": "lots"}, field_map=FIELD_MAP, model=DealUpserted)

    outcome = build_payload(
        DealUpserted,
        base={"crm": "hubspot", "crm_id": "9", "occurred_at": OCCURRED},
        mapped=mapped,
        index=4,
        loc_of=lambda name: (4, "properties", name),
    )

    assert isinstance(outcome, list)
    assert [error.loc for error in outcome] == [(4, "properties", "amount")]


def test_build_payload_coerces_crm_strings() -> None:
    mapped = map_properties(
        {"hs_is_target_account": "true", "abm_tier": "Tier 2"},
        field_map=FIELD_MAP,
        model=AccountUpserted,
    )

    payload = build_payload(
        AccountUpserted,
        base={"crm": "hubspot", "crm_id": "7", "occurred_at": OCCURRED},
        mapped=mapped,
        index=None,
        loc_of=lambda name: (name,),
    )

    assert isinstance(payload, AccountUpserted)
    assert payload.target_account is True
    assert payload.tier is Tier.T2
