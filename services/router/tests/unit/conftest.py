"""Shared builders for the router's pure-core tests: a directory, a rule set, accounts, events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tandem_router.domain.model import AccountState, Assignment, EngagementRecord
from tandem_router.domain.rules import RuleSet, parse_rules
from tandem_shared.directory import Channel, Directory, Person, Role
from tandem_shared.events import (
    ContactUpserted,
    CrmSystem,
    EngagementKind,
    EngagementRecorded,
    IntentObserved,
    Tier,
)

# A Tuesday, 10:00 in New York, 15:00 in London, 07:00 in Los Angeles.
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

RULES_DOC: dict[str, Any] = {
    "version": "2026-11-23.1",
    "tiers": {
        "1": {"route": "ae"},
        "2": {"route": "sdr", "fyi_ae": True},
        "3": {"route": "round_robin"},
    },
    "pools": {
        "na-sdrs": {"members": ["dan.sdr"], "territories": ["na-east", "na-central"]},
        "emea-sdrs": {"members": ["eve.sdr"], "territories": ["emea"]},
        "na-west-sdrs": {"members": ["finn.sdr"], "territories": ["na-west"]},
        "all-sdrs": {"members": ["dan.sdr", "eve.sdr", "finn.sdr"]},
    },
    "default_pool": "all-sdrs",
    "urgency": {"default": "normal", "tiers": {"1": {"meeting_request": "urgent"}}},
    "marketing_channel": "abm-marketing",
    "escalation_manager_id": "sam.manager",
}


def person(person_id: str, role: Role, **fields: Any) -> Person:
    """Return a person with sensible defaults for tests."""
    team = {"marketer": "marketing", "leader": "revops"}.get(role.value, "sales")
    defaults: dict[str, Any] = {
        "name": person_id.split(".")[0].title(),
        "email": f"{person_id}@tandem.example",
        "team": team,
        "manager_id": "sam.manager" if role in (Role.AE, Role.SDR) else None,
    }
    return Person(id=person_id, role=role, **{**defaults, **fields})


def make_directory(*overrides: Person) -> Directory:
    """Return the test directory; people passed in replace those with the same id."""
    people = {
        p.id: p
        for p in (
            person(
                "ava.ae",
                Role.AE,
                crm_user_ids=("hs-owner-101",),
                territories=("na-east",),
                timezone="America/New_York",
            ),
            person(
                "ben.ae",
                Role.AE,
                crm_user_ids=("hs-owner-102",),
                territories=("na-central",),
                timezone="America/Chicago",
            ),
            person(
                "chloe.ae",
                Role.AE,
                crm_user_ids=("hs-owner-103",),
                territories=("emea",),
                timezone="Europe/Paris",
            ),
            person(
                "dan.sdr",
                Role.SDR,
                crm_user_ids=("hs-owner-201",),
                territories=("na-east", "na-central"),
                timezone="America/New_York",
                capacity=25,
            ),
            person(
                "eve.sdr", Role.SDR, territories=("emea",), timezone="Europe/London", capacity=25
            ),
            person(
                "finn.sdr",
                Role.SDR,
                territories=("na-west",),
                timezone="America/Los_Angeles",
                weight=2,
            ),
            person("mia.marketing", Role.MARKETER),
            person("sam.manager", Role.MANAGER),
        )
    }
    people.update({p.id: p for p in overrides})
    channels = (Channel(id="abm-marketing", slack_channel="#abm-marketing"),)
    return Directory(people=tuple(people.values()), channels=channels)


def rules_doc(**changes: Any) -> dict[str, Any]:
    """Return a deep copy of the test rule set document with top-level changes."""
    doc = copy.deepcopy(RULES_DOC)
    doc.update(changes)
    return doc


def acme_state(**changes: Any) -> AccountState:
    """Return Acme: tier 1 on the TAL, Ava (AE), Dan (SDR), Mia (marketing), na-east."""
    tal = Assignment(
        ae_id="ava.ae",
        sdr_id="dan.sdr",
        marketer_id="mia.marketing",
        tier=Tier.T1,
        territory="na-east",
    )
    base = AccountState(
        account_key="acme.com",
        name="Acme Corporation",
        tier=Tier.T1,
        in_tal=True,
        territory="na-east",
        tal=tal,
        crm=Assignment(ae_id="hs-owner-101"),
        alias_domains=("acme.io",),
        subsidiary_domains=("acme-labs.com",),
        crm_ids={"hubspot": "hs-acme-1"},
    )
    return base.model_copy(update=changes)


def engagement(
    kind: EngagementKind = EngagementKind.PAGE_VIEW,
    *,
    at: datetime = NOW,
    email: str | None = "jo@acme.com",
    engagement_id: str = "eng-1",
    account_key: str | None = "acme.com",
    **fields: Any,
) -> EngagementRecorded:
    return EngagementRecorded(
        engagement_id=engagement_id,
        source="segment",
        kind=kind,
        account_key=account_key,
        contact_email=email,
        occurred_at=at,
        **fields,
    )


def history(
    count: int, *, start: datetime, step: timedelta, contacts: int = 1
) -> tuple[EngagementRecord, ...]:
    """Return `count` page views, `step` apart from `start`, by `contacts` people in turn."""
    return tuple(
        EngagementRecord(
            engagement_id=f"h-{i}",
            kind=EngagementKind.PAGE_VIEW,
            contact=f"p{i % contacts}@acme.com",
            occurred_at=start + i * step,
        )
        for i in range(count)
    )


def lead(email: str = "new@acme.com", **fields: Any) -> ContactUpserted:
    return ContactUpserted(
        crm=CrmSystem.HUBSPOT,
        crm_id=f"c-{email}",
        is_lead=True,
        email=email,
        occurred_at=NOW,
        **fields,
    )


def intent(score: float | None, *, at: datetime = NOW, **fields: Any) -> IntentObserved:
    defaults: dict[str, Any] = {"provider": "bombora", "topic": "CRM Software"}
    return IntentObserved(
        account_key="acme.com", score=score, observed_at=at, **{**defaults, **fields}
    )


@pytest.fixture
def directory() -> Directory:
    return make_directory()


@pytest.fixture
def rules() -> RuleSet:
    return parse_rules(rules_doc())


class Builders:
    """The builders above, handed to tests as the `make` fixture."""

    now = NOW
    person = staticmethod(person)
    directory = staticmethod(make_directory)
    rules_doc = staticmethod(rules_doc)
    acme = staticmethod(acme_state)
    engagement = staticmethod(engagement)
    history = staticmethod(history)
    lead = staticmethod(lead)
    intent = staticmethod(intent)

    @staticmethod
    def rules(**changes: Any) -> RuleSet:
        return parse_rules(rules_doc(**changes))


@pytest.fixture
def make() -> type[Builders]:
    return Builders


@pytest.fixture
def now() -> datetime:
    return NOW
