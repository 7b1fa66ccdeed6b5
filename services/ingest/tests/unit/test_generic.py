from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tandem_ingest.domain.errors import MalformedBodyError, SchemaError
from tandem_ingest.domain.generic import GenericConfig, normalize_generic
from tandem_shared import topics
from tandem_shared.events import (
    ActivityLogged,
    CrmSystem,
    EngagementKind,
    EngagementRecorded,
    EventType,
    IntentObserved,
)


def _intent(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "intent",
        "id": "6s-981",
        "domain": "acme.com",
        "company_name": "Acme",
        "topic": "Sales Engagement",
        "score": 87,
        "surge": True,
        "source": "6sense",
        "observed_at": "2025-01-06T08:00:00Z",
        **overrides,
    }


def _meeting(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "engagement",
        "id": "evt-1",
        "event": "meeting_request",
        "email": "Dana.Lee@Acme.com",
        "name": "Dana Lee",
        "url": "https://tandem.io/demo",
        "occurred_at": "2025-01-06T15:30:00+01:00",
        **overrides,
    }


def test_a_meeting_request_for_an_account_arrives_as_an_engagement(received_at: datetime) -> None:
    result = normalize_generic(orjson.dumps(_meeting()), received_at=received_at)

    (event,) = result.events
    payload = event.payload
    assert isinstance(payload, EngagementRecorded)
    assert (event.topic, event.type, event.subject) == (
        topics.ENGAGEMENT,
        EventType.ENGAGEMENT_RECORDED,
        "acme.com",
    )
    assert payload.kind is EngagementKind.MEETING_REQUEST
    assert (payload.contact_email, payload.contact_name) == ("dana.lee@acme.com", "Dana Lee")
    assert (payload.source, event.dedupe_key) == ("generic", "generic:evt-1")
    assert payload.occurred_at == datetime(2025, 1, 6, 14, 30, tzinfo=UTC)


def test_an_explicit_domain_wins_over_the_email_domain(received_at: datetime) -> None:
    record = _meeting(email="dana@gmail.com", domain="www.acme.com", source="demandbase")

    (event,) = normalize_generic(record, received_at=received_at).events

    assert event.subject == "acme.com"
    assert event.dedupe_key == "demandbase:evt-1"


def test_an_intent_record(received_at: datetime) -> None:
    (event,) = normalize_generic(_intent(), received_at=received_at).events

    payload = event.payload
    assert isinstance(payload, IntentObserved)
    assert (event.topic, event.subject, event.dedupe_key) == (
        topics.INTENT,
        "acme.com",
        "6sense:6s-981",
    )
    assert (payload.provider, payload.topic, payload.score, payload.surging) == (
        "6sense",
        "Sales Engagement",
        87.0,
        True,
    )


def test_a_batch_keeps_good_records_and_reports_paths(received_at: datetime) -> None:
    body = {
        "events": [
            _intent(),
            _intent(id="2", score=140),
            _meeting(unexpected="field"),
            _meeting(id="3", event="coffee"),
            {"kind": "survey", "id": "4"},
            _intent(id="5", domain="gmail.com"),
            _meeting(id="6", occurred_at="2025-01-06T15:30:00"),
            ["not", "an", "object"],
            _meeting(id="7"),
        ]
    }

    result = normalize_generic(orjson.dumps(body), received_at=received_at)

    assert [event.dedupe_key for event in result.events] == ["6sense:6s-981", "generic:7"]
    assert [(error.index, error.loc) for error in result.errors] == [
        (1, ("events", 1, "score")),
        (2, ("events", 2, "unexpected")),
        (3, ("events", 3, "event")),
        (4, ("events", 4, "kind")),
        (5, ("events", 5, "domain")),
        (6, ("events", 6, "occurred_at")),
        (7, ("events", 7)),
    ]


@pytest.mark.parametrize(
    ("record", "loc"),
    [
        ({**_intent(), "surge": "maybe"}, ("surge",)),
        ({k: v for k, v in _intent().items() if k != "topic"}, ("topic",)),
        (_meeting(email="not-an-email"), ("email",)),
        (_meeting(id="  "), ("id",)),
        (_intent(source="Bad Source!"), ("source",)),
    ],
)
def test_a_single_invalid_record_is_a_schema_error(
    record: dict[str, Any], loc: tuple[str, ...], received_at: datetime
) -> None:
    with pytest.raises(SchemaError) as raised:
        normalize_generic(record, received_at=received_at)

    assert [error.loc for error in raised.value.errors] == [loc]


@pytest.mark.parametrize("body", [{"records": []}, {"events": {}}])
def test_a_body_neither_record_nor_batch_is_a_schema_error(
    body: dict[str, Any], received_at: datetime
) -> None:
    with pytest.raises(SchemaError, match="events"):
        normalize_generic(body, received_at=received_at)


def test_invalid_json_is_a_malformed_body(received_at: datetime) -> None:
    with pytest.raises(MalformedBodyError):
        normalize_generic(b"{'kind': 'intent'}", received_at=received_at)


def _call(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "activity",
        "id": "c-77",
        "activity": "call",
        "rep": "Rita.Rep@Tandem.example",
        "contact_email": "Dana@Acme.com",
        "source": "aircall",
        "occurred_at": "2025-01-06T15:30:00+01:00",
        **overrides,
    }


def test_an_activity_record_is_sales_activity_on_the_crm_topic(received_at: datetime) -> None:
    config = GenericConfig(crm=CrmSystem.HUBSPOT)
    [event] = normalize_generic(_call(), received_at=received_at, config=config).events
    payload = event.payload
    assert isinstance(payload, ActivityLogged)
    assert (event.topic, event.type, event.subject) == (
        topics.CRM,
        EventType.ACTIVITY_LOGGED,
        "acme.com",
    )
    assert (payload.actor_id, payload.contact_email) == ("rita.rep@tandem.example", "dana@acme.com")
    assert (payload.activity_id, payload.source, payload.crm) == (
        "aircall:c-77",
        "aircall",
        CrmSystem.HUBSPOT,
    )
    assert payload.occurred_at == datetime(2025, 1, 6, 14, 30, tzinfo=UTC)
    # Its own dedupe namespace: an engagement record with the same id is another event.
    assert event.dedupe_key == "activity:aircall:c-77"


def test_an_activity_on_an_account_names_its_crm_itself(received_at: datetime) -> None:
    record = _call(contact_email=None, domain="www.initech.com", crm="salesforce")
    [event] = normalize_generic(record, received_at=received_at).events
    assert event.subject == "initech.com"
    assert event.payload.crm is CrmSystem.SALESFORCE  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("record", "loc"),
    [
        (_call(), ("crm",)),  # neither the record nor the source's config says which CRM
        (_call(crm="hubspot", contact_email=None), ()),  # nobody touched
        (_call(crm="hubspot", activity="fax"), ("activity",)),
        (_call(crm="hubspot", rep="rita"), ("rep",)),
    ],
)
def test_an_unusable_activity_record_names_the_field(
    record: dict[str, Any], loc: tuple[str, ...], received_at: datetime
) -> None:
    with pytest.raises(SchemaError) as raised:
        normalize_generic(record, received_at=received_at)

    assert [error.loc for error in raised.value.errors] == [loc]
