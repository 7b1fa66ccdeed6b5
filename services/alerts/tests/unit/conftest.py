"""Shared fixtures of the alerts service's unit tests: people, a directory and alert factories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tandem_shared.directory import Channel, Directory, Person
from tandem_shared.events import AlertKind, AlertRequested, HandoffContext, Signal, Tier

PersonFactory = Callable[..., Person]
AlertFactory = Callable[..., AlertRequested]


def _person(person_id: str, **fields: Any) -> Person:
    base: dict[str, Any] = {
        "id": person_id,
        "name": person_id.split(".")[0].title(),
        "email": f"{person_id}@tandem.example",
        "role": "ae",
        "team": "sales",
        "slack_user_id": f"U{person_id.split('.')[0].upper()}",
    }
    return Person.model_validate(base | fields)


@pytest.fixture
def make_person() -> PersonFactory:
    return _person


@pytest.fixture
def ava() -> Person:
    """An AE in New York with quiet hours that wrap midnight and a cover."""
    return _person(
        "ava.ae",
        timezone="America/New_York",
        cover_id="ben.ae",
        preferences={
            "channels": ["slack", "email"],
            "quiet_hours": {"start": "20:00", "end": "07:00"},
        },
    )


@pytest.fixture
def directory(ava: Person) -> Directory:
    return Directory(
        people=(
            ava,
            _person("ben.ae", timezone="America/Chicago"),
            _person("chloe.ae", timezone="Europe/Paris", preferences={"channels": ["email"]}),
            _person("nina.ae", slack_user_id=None, preferences={"channels": ["slack"]}),
            _person("old.ae", active=False),
        ),
        channels=(
            Channel(id="abm-marketing", slack_channel="C0ABM", email="abm@tandem.example"),
            Channel(id="empty"),
        ),
    )


@pytest.fixture
def make_alert() -> AlertFactory:
    def factory(**fields: Any) -> AlertRequested:
        base: dict[str, Any] = {
            "alert_id": "al-1",
            "kind": AlertKind.HANDOFF,
            "recipient_ids": ["ava.ae"],
            "title": "Acme Corp requested a meeting",
            "summary": "Jane Doe asked for a demo next week.",
            "account_key": "acme.com",
            "account_name": "Acme Corp",
            "tier": Tier.T1,
            "signal": Signal.MEETING_REQUEST,
            "handoff_id": "ho-42",
            "assignee_id": "ava.ae",
            "reason": "Account owner of a Tier 1 account in na-east",
            "sla_deadline": datetime(2024, 5, 14, 18, 0, tzinfo=UTC),
            "crm_url": "https://app.hubspot.com/contacts/1/company/42",
            "context": HandoffContext(
                research_summary="Acme is consolidating vendors after a merger.",
                engagement_history=[
                    {
                        "occurred_at": datetime(2024, 5, 13, 15, 0, tzinfo=UTC),
                        "kind": "content_download",
                        "name": "Pricing guide downloaded",
                        "contact": "jane@acme.com",
                    },
                    {
                        "occurred_at": datetime(2024, 5, 14, 9, 0, tzinfo=UTC),
                        "kind": "meeting_request",
                        "name": "Demo requested",
                        "contact": "jane@acme.com",
                    },
                ],
                content_consumed=["ABM Playbook 2024", "Pricing guide"],
                intent_signals=[
                    {
                        "provider": "bombora",
                        "topic": "Sales Alignment",
                        "score": 78,
                        "surging": True,
                    }
                ],
                suggested_approach="Lead with the consolidation story; offer a 30-minute demo.",
            ),
            "requested_at": datetime(2024, 5, 14, 14, 0, tzinfo=UTC),
        }
        return AlertRequested.model_validate(base | fields)

    return factory
