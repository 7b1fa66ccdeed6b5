"""Shared fixtures of the SLA monitor's unit tests: a small directory and policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tandem_shared.directory import Directory, Person
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    CrmSystem,
    MatchInfo,
    RoutingDecided,
    Signal,
    Tier,
)
from tandem_sla_monitor.domain.clock import SlaClock, start_clock
from tandem_sla_monitor.domain.policy import SlaPolicy


def person(person_id: str, **fields: object) -> Person:
    base: dict[str, object] = {
        "id": person_id,
        "name": person_id.title(),
        "email": f"{person_id}@tandem.example",
        "role": "ae",
        "team": "sales",
    }
    return Person.model_validate(base | fields)


@pytest.fixture
def directory() -> Directory:
    return Directory(
        people=(
            person(
                "ava.ae",
                crm_user_ids=("hs-owner-101",),
                manager_id="sam.manager",
                timezone="America/New_York",
                country="US",
            ),
            person("ben.ae", manager_id="sam.manager", timezone="America/Chicago"),
            person(
                "chloe.ae",
                manager_id="sam.manager",
                timezone="Europe/Paris",
                country="FR",
            ),
            person("dan.sdr", role="sdr", crm_user_ids=("hs-owner-201",)),
            person(
                "sam.manager",
                role="manager",
                manager_id="lea.leader",
                timezone="America/New_York",
            ),
            person("lea.leader", role="leader", team="revops", timezone="America/New_York"),
        )
    )


@pytest.fixture
def ava(directory: Directory) -> Person:
    found = directory.get("ava.ae")
    assert found is not None
    return found


@pytest.fixture
def policy() -> SlaPolicy:
    return SlaPolicy(version="test-1")


DecisionFactory = Callable[..., RoutingDecided]


@pytest.fixture
def decision() -> DecisionFactory:
    def make(
        decided_at: datetime,
        *,
        tier: Tier = Tier.T1,
        signal: Signal = Signal.MEETING_REQUEST,
        assignee_id: str = "ava.ae",
        handoff_id: str = "handoff-1",
    ) -> RoutingDecided:
        return RoutingDecided(
            decision_id=f"decision-{handoff_id}",
            handoff_id=handoff_id,
            account_key="acme.com",
            account_name="Acme Corporation",
            tier=tier,
            in_tal=True,
            signal=signal,
            assignee_id=assignee_id,
            assignee_role="ae",
            contact_email="jane@acme.com",
            match=MatchInfo(method="domain"),
            rule_set_version="rules-1",
            decided_at=decided_at,
        )

    return make


ActivityFactory = Callable[..., ActivityLogged]


@pytest.fixture
def activity() -> ActivityFactory:
    def make(
        occurred_at: datetime,
        *,
        actor_id: str | None = "hs-owner-101",
        kind: ActivityKind = ActivityKind.CALL,
        account_key: str | None = "acme.com",
        contact_email: str | None = None,
        activity_id: str = "act-1",
    ) -> ActivityLogged:
        return ActivityLogged(
            crm=CrmSystem.HUBSPOT,
            activity_id=activity_id,
            kind=kind,
            account_key=account_key,
            contact_email=contact_email,
            actor_id=actor_id,
            occurred_at=occurred_at,
        )

    return make


# Monday 2 March 2026, 10:00 in New York: an ordinary working morning.
MONDAY_10AM = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def clock(decision: DecisionFactory, ava: Person, policy: SlaPolicy) -> SlaClock:
    """A Tier 1 meeting request for ava.ae at Monday 10:00 New York: due at 10:15."""
    started, _ = start_clock(decision(MONDAY_10AM), ava, policy)
    return started
