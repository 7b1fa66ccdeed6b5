from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.normalized import (
    EVENT_ID_NAMESPACE,
    ElementError,
    NormalizedEvent,
    NormalizeResult,
    event_id,
)
from tandem_shared import topics
from tandem_shared.envelope import Envelope
from tandem_shared.events import EngagementKind, EngagementRecorded, EventType

OCCURRED = datetime(2025, 1, 6, 15, 0, tzinfo=UTC)


def _event(dedupe_key: str = "msg-1", source: str = "/ingest/segment") -> NormalizedEvent:
    payload = EngagementRecorded(
        engagement_id=dedupe_key,
        source="segment",
        kind=EngagementKind.MEETING_REQUEST,
        account_key="acme.com",
        occurred_at=OCCURRED,
    )
    return NormalizedEvent(
        source=source,
        topic=topics.ENGAGEMENT,
        type=EventType.ENGAGEMENT_RECORDED,
        subject="acme.com",
        dedupe_key=dedupe_key,
        occurred_at=OCCURRED,
        payload=payload,
    )


def test_envelope_carries_type_source_subject_time_and_payload() -> None:
    envelope = _event().to_envelope(causationid="cause-1")

    decoded = Envelope.from_bytes(envelope.to_bytes())
    assert decoded.type == EventType.ENGAGEMENT_RECORDED
    assert decoded.source == "/ingest/segment"
    assert decoded.subject == "acme.com"
    assert decoded.time == OCCURRED
    assert decoded.causationid == "cause-1"
    assert decoded.payload(EngagementRecorded).kind is EngagementKind.MEETING_REQUEST


def test_a_redelivery_maps_to_the_same_event_id() -> None:
    first, again = _event().to_envelope(), _event().to_envelope()

    assert first.id == again.id
    assert uuid.UUID(first.id).version == 5


@given(source=st.text(max_size=40), dedupe_key=st.text(max_size=200))
def test_event_ids_are_the_stdlib_uuid5_of_source_and_key(source: str, dedupe_key: str) -> None:
    # Ids published before must stay the same ids: redeliveries dedupe downstream by them.
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\n{dedupe_key}")
    assert event_id(source, dedupe_key) == str(expected)


def test_event_ids_differ_by_dedupe_key_and_by_source() -> None:
    ids = {
        event_id("/ingest/segment", "msg-1"),
        event_id("/ingest/segment", "msg-2"),
        event_id("/ingest/generic", "msg-1"),
    }

    assert len(ids) == 3
    assert _event("msg-2").event_id == event_id("/ingest/segment", "msg-2")


def test_collect_keeps_good_elements_next_to_bad_ones_and_counts_ignored() -> None:
    bad = ElementError(1, (1, "objectId"), "Field required")

    result = NormalizeResult.collect([[_event("a")], [bad], [], [_event("b")]])

    assert [event.dedupe_key for event in result.events] == ["a", "b"]
    assert result.errors == (bad,)
    assert result.ignored == 1


def test_collect_raises_a_schema_error_when_nothing_is_usable() -> None:
    bad = ElementError(None, ("kind",), "expected 'intent' or 'engagement'")

    with pytest.raises(SchemaError) as raised:
        NormalizeResult.collect([[bad], []])

    assert raised.value.errors == (bad,)
    assert "kind: expected" in str(raised.value)


def test_an_empty_delivery_is_an_empty_result_not_an_error() -> None:
    result = NormalizeResult.collect([])

    assert result == NormalizeResult()


def test_element_error_renders_like_a_fastapi_detail() -> None:
    error = ElementError(2, ("events", 2, "score"), "Input should be less than or equal to 100")

    assert error.as_dict() == {
        "index": 2,
        "loc": ["events", 2, "score"],
        "msg": "Input should be less than or equal to 100",
    }


def test_the_encoded_envelope_is_the_envelope_written() -> None:
    event = _event()
    encoded, envelope = event.encoded(), event.to_envelope()
    assert encoded.to_bytes() == envelope.to_bytes()
    assert (encoded.id, encoded.key) == (envelope.id, b"acme.com")
