from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.segment import SegmentConfig, normalize_segment
from tandem_shared import topics
from tandem_shared.events import EngagementKind, EngagementRecorded, EventType


def _track(event: str, message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": "2025-01-06T15:30:00Z",
        "userId": "u-1",
        **extra,
    }


def _payload(result_events: tuple[Any, ...]) -> EngagementRecorded:
    payload = result_events[0].payload
    assert isinstance(payload, EngagementRecorded)
    return payload


def test_docs_track_message(vendor_sample: Callable[[str], bytes], received_at: datetime) -> None:
    result = normalize_segment(
        vendor_sample("segment/track_complete_docs_example.json"), received_at=received_at
    )

    (event,) = result.events
    payload = _payload(result.events)
    assert (event.topic, event.type) == (topics.ENGAGEMENT, EventType.ENGAGEMENT_RECORDED)
    assert event.dedupe_key == "ajs-f8ca1e4de5024d9430b3928bd8ac6b96"
    assert (payload.kind, payload.name) == (EngagementKind.OTHER, "Course Clicked")
    assert payload.url == "https://segment.com/academy/"
    assert payload.content_title == "Intro to Analytics"
    assert payload.occurred_at == datetime(2015, 12, 12, 19, 11, 1, 249000, tzinfo=UTC)
    assert event.subject is None


def test_docs_identify_message(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    result = normalize_segment(
        vendor_sample("segment/identify_complete_docs_example.json"), received_at=received_at
    )

    payload = _payload(result.events)
    assert payload.kind is EngagementKind.IDENTIFY
    assert (payload.contact_email, payload.contact_name) == ("peter@example.com", "Peter Gibbons")
    assert payload.account_key == result.events[0].subject == "example.com"
    assert payload.user_id == "97980cfea0067"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Meeting Requested", EngagementKind.MEETING_REQUEST),
        ("Demo Requested", EngagementKind.MEETING_REQUEST),
        ("demo_requested", EngagementKind.MEETING_REQUEST),
        ("Whitepaper Downloaded", EngagementKind.CONTENT_DOWNLOAD),
        ("Content Downloaded", EngagementKind.CONTENT_DOWNLOAD),
        ("Form Submitted", EngagementKind.FORM_FILL),
        ("Webinar Attended", EngagementKind.EVENT_ATTENDANCE),
        ("Event Attended", EngagementKind.EVENT_ATTENDANCE),
        ("Ad Clicked", EngagementKind.AD_CLICK),
        ("Signed Up", EngagementKind.OTHER),
    ],
)
def test_track_event_names_map_to_kinds(
    name: str, kind: EngagementKind, received_at: datetime
) -> None:
    result = normalize_segment(_track(name), received_at=received_at)

    assert _payload(result.events).kind is kind


def test_event_kinds_are_configurable(received_at: datetime) -> None:
    config = SegmentConfig(event_kinds={"Pricing Calculator Used": EngagementKind.FORM_FILL})

    result = normalize_segment(
        _track("pricing calculator used"), config=config, received_at=received_at
    )

    assert _payload(result.events).kind is EngagementKind.FORM_FILL


def test_company_domain_beats_the_email_domain_for_the_account_key(received_at: datetime) -> None:
    message = _track(
        "Demo Requested",
        context={
            "traits": {"email": "jo@gmail.com", "company": {"name": "Acme", "domain": "acme.com"}}
        },
    )

    result = normalize_segment(message, received_at=received_at)

    payload = _payload(result.events)
    assert (payload.account_key, payload.company_name) == ("acme.com", "Acme")
    assert payload.contact_email == "jo@gmail.com"


def test_personal_email_gives_no_account_key(received_at: datetime) -> None:
    result = normalize_segment(
        _track("Demo Requested", properties={"email": "jo@gmail.com"}), received_at=received_at
    )

    assert _payload(result.events).account_key is None


def test_group_traits_name_the_company(received_at: datetime) -> None:
    message = {
        "type": "group",
        "messageId": "g-1",
        "groupId": "acct-9",
        "traits": {"name": "Initech", "website": "https://www.initech.io", "employees": 400},
    }

    result = normalize_segment(message, received_at=received_at)

    payload = _payload(result.events)
    assert payload.kind is EngagementKind.GROUP
    assert (payload.account_key, payload.company_name, payload.contact_name) == (
        "initech.io",
        "Initech",
        None,
    )
    assert payload.properties["employees"] == 400
    assert payload.occurred_at == received_at


def test_page_becomes_a_page_view(received_at: datetime) -> None:
    message = {
        "type": "page",
        "messageId": "p-1",
        "name": "Pricing",
        "context": {"page": {"url": "https://tandem.io/pricing", "title": "Pricing - Tandem"}},
        "originalTimestamp": "2025-01-06T15:00:00+01:00",
    }

    payload = _payload(normalize_segment(message, received_at=received_at).events)

    assert (payload.kind, payload.name) == (EngagementKind.PAGE_VIEW, "Pricing")
    assert (payload.url, payload.content_title) == ("https://tandem.io/pricing", "Pricing - Tandem")
    assert payload.occurred_at == datetime(2025, 1, 6, 14, 0, tzinfo=UTC)


def test_batch_keeps_good_messages_and_reports_bad_ones(received_at: datetime) -> None:
    body = {
        "batch": [
            _track("Form Submitted", "m-1"),
            {"type": "track", "event": "No id"},
            {"type": "alias", "messageId": "a-1", "previousId": "x"},
            _track("Ad Clicked", "m-2", timestamp="not a date"),
            _track("Ad Clicked", "m-3"),
        ]
    }

    result = normalize_segment(orjson.dumps(body), received_at=received_at)

    assert [event.dedupe_key for event in result.events] == ["m-1", "m-3"]
    assert [(error.index, error.loc) for error in result.errors] == [
        (1, ("batch", 1, "messageId")),
        (3, ("batch", 3, "timestamp")),
    ]
    assert result.ignored == 1


def test_an_unknown_message_type_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(SchemaError) as raised:
        normalize_segment({"type": "screenview", "messageId": "x"}, received_at=received_at)

    assert raised.value.errors[0].loc == ("type",)
    assert raised.value.errors[0].index is None


def test_a_batch_that_is_not_a_list_is_a_schema_error(received_at: datetime) -> None:
    with pytest.raises(SchemaError, match="batch"):
        normalize_segment({"batch": {"type": "track"}}, received_at=received_at)
