from datetime import UTC, datetime

import pytest

from tandem_shared.envelope import Envelope, EnvelopeError
from tandem_shared.events import EngagementKind, EngagementRecorded, EventType


def _engagement() -> EngagementRecorded:
    return EngagementRecorded(
        engagement_id="e1",
        source="segment",
        kind=EngagementKind.MEETING_REQUEST,
        account_key="acme.com",
        occurred_at=datetime(2026, 11, 23, 15, tzinfo=UTC),
    )


def test_wrap_round_trips_through_bytes_with_the_account_key_as_kafka_key() -> None:
    env = Envelope.wrap(
        _engagement(),
        type=EventType.ENGAGEMENT_RECORDED,
        source="/ingest/x",
        subject="acme.com",
        id="fixed-id",
    )
    back = Envelope.from_bytes(env.to_bytes())
    assert back == env
    assert back.key == b"acme.com"
    assert back.specversion == "1.0"
    assert back.payload(EngagementRecorded).kind is EngagementKind.MEETING_REQUEST


def test_event_without_account_is_keyed_by_its_id() -> None:
    env = Envelope(type="t", source="/s", id="abc")
    assert env.key == b"abc"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'{"id": "x"}'])
def test_bytes_that_are_not_an_envelope_raise_envelope_error(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_bytes(raw)
