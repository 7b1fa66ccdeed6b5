from __future__ import annotations

import pytest

from tandem_router.domain.matching import (
    AccountIndex,
    AccountRef,
    locate_account,
    match_account,
    normalize_company_name,
)
from tandem_router.domain.model import AccountState
from tandem_shared.events import ContactUpserted, CrmSystem


@pytest.fixture
def index(make) -> AccountIndex:
    states = [
        make.acme(),
        AccountState(account_key="globex.com", name="Globex GmbH"),
        AccountState(account_key="initech.fr", name="Initech France S.A.S."),
        AccountState(
            account_key="umbrella.co.uk",
            name="Umbrella Holdings plc",
            alias_domains=("umbrella-research.com",),
        ),
        AccountState(account_key="hooli.com", name="Hooli Inc."),
        AccountState(account_key="hooli-eu.com", name="Hooli, Inc"),
    ]
    return AccountIndex.build(AccountRef.of(s) for s in states)


def lead(email=None, company=None, **fields):
    return ContactUpserted(
        crm=CrmSystem.HUBSPOT,
        crm_id="c1",
        is_lead=True,
        email=email,
        company_name=company,
        occurred_at="2026-11-24T15:00:00Z",
        **fields,
    )


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Acme Corporation", "acme"),
        ("ACME, Inc.", "acme"),
        ("Globex GmbH", "globex"),
        ("Initech France S.A.S.", "initech france s a s"),
        ("The Umbrella Company Ltd", "umbrella"),
        ("Crédit Agricole SA", "credit agricole"),
        ("Johnson & Johnson", "johnson and johnson"),
        ("Inc", "inc"),
    ],
)
def test_normalize_company_name(raw, normalized):
    assert normalize_company_name(raw) == normalized


def test_primary_domain_uses_the_registered_domain(index):
    found = match_account(index, domains=["jo@eu.mail.acme.com"], fuzzy_threshold=0.9)
    assert found.account_key == "acme.com"
    assert (found.info.method, found.info.score, found.info.matched_value) == (
        "domain",
        1.0,
        "acme.com",
    )


def test_public_suffix_rules_apply(index):
    found = match_account(index, domains=["ops@research.umbrella.co.uk"], fuzzy_threshold=0.9)
    assert found.account_key == "umbrella.co.uk"


def test_alias_domain(index):
    found = match_account(index, domains=["jo@acme.io"], fuzzy_threshold=0.9)
    assert (found.account_key, found.info.method, found.info.matched_value) == (
        "acme.com",
        "alias_domain",
        "acme.io",
    )


def test_subsidiary_domain(index):
    found = match_account(index, domains=["jo@labs.acme-labs.com"], fuzzy_threshold=0.9)
    assert found.account_key == "acme.com"
    assert found.info.method == "subsidiary_domain"
    assert "subsidiary" in found.note


def test_crm_account_id_wins(index):
    found = match_account(
        index, crm_account_id="hs-acme-1", domains=["x@globex.com"], fuzzy_threshold=0.9
    )
    assert (found.account_key, found.info.method) == ("acme.com", "crm_id")


def test_personal_mail_never_matches_even_with_a_known_name(index):
    assert match_account(index, domains=["jo@gmail.com"], fuzzy_threshold=0.9) is None
    found = locate_account(lead("jo@gmail.com"), index, fuzzy_threshold=0.9)
    assert found.account_key is None and found.info.method == "none"


def test_personal_mail_falls_back_to_the_company_name(index):
    found = locate_account(lead("jo@gmail.com", "ACME Corp."), index, fuzzy_threshold=0.9)
    assert (found.account_key, found.info.method) == ("acme.com", "fuzzy_name")
    assert found.info.score == 1.0


def test_fuzzy_threshold_is_honoured(index):
    near = "Globexx"  # ratio with "globex" is about 0.92
    assert match_account(index, company_name=near, fuzzy_threshold=0.9).account_key == "globex.com"
    assert match_account(index, company_name=near, fuzzy_threshold=0.95) is None
    score = match_account(index, company_name=near, fuzzy_threshold=0.5).info.score
    assert 0.9 <= score < 0.95


def test_ambiguous_names_do_not_match(index):
    # "Hooli Inc." and "Hooli, Inc" normalize alike: no safe pick.
    assert match_account(index, company_name="Hooli", fuzzy_threshold=0.9) is None


def test_unknown_business_domain_is_a_new_account(index):
    found = locate_account(lead("ceo@newco.io"), index, fuzzy_threshold=0.9)
    assert (found.account_key, found.info.method, found.info.matched_value) == (
        "newco.io",
        "none",
        "newco.io",
    )
    assert not found.matched


def test_event_account_key_on_an_alias_maps_to_the_primary(index, make):
    event = make.engagement(email=None, account_key="umbrella-research.com")
    found = locate_account(event, index, fuzzy_threshold=0.9)
    assert (found.account_key, found.info.method) == ("umbrella.co.uk", "alias_domain")
