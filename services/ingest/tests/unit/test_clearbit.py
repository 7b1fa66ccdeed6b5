from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tandem_ingest.domain.clearbit import ClearbitConfig, normalize_clearbit
from tandem_ingest.domain.errors import SchemaError
from tandem_shared import topics
from tandem_shared.events import EventType, IntentObserved

SAMPLE = "intent/clearbit_audience_webhook_segment_enter.json"


def _sample(vendor_sample: Callable[[str], bytes]) -> dict[str, Any]:
    parsed = orjson.loads(vendor_sample(SAMPLE))
    assert isinstance(parsed, dict)
    return parsed


def test_docs_segment_enter(vendor_sample: Callable[[str], bytes], received_at: datetime) -> None:
    result = normalize_clearbit(vendor_sample(SAMPLE), received_at=received_at)

    (event,) = result.events
    payload = event.payload
    assert isinstance(payload, IntentObserved)
    assert (event.topic, event.type, event.subject) == (
        topics.INTENT,
        EventType.INTENT_OBSERVED,
        "clearbit.com",
    )
    assert (payload.provider, payload.topic, payload.segment) == ("clearbit", "Test Segment", "ID")
    assert (payload.entered, payload.surging, payload.company_name) == (True, False, "Clearbit")
    assert payload.attributes["employees_range"] == "51-250"
    assert payload.observed_at == datetime(2019, 9, 20, 23, 12, 49, 679000, tzinfo=UTC)


def test_the_same_delivery_twice_has_one_dedupe_key(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    first = normalize_clearbit(vendor_sample(SAMPLE), received_at=received_at).events[0]
    again = normalize_clearbit(_sample(vendor_sample), received_at=received_at).events[0]
    exited = _sample(vendor_sample)
    exited["context"]["trigger"] = "segment_exit"
    left = normalize_clearbit(exited, received_at=received_at).events[0]

    assert first.dedupe_key == again.dedupe_key != left.dedupe_key
    assert left.payload.entered is False  # type: ignore[attr-defined]


def test_without_timestamp_the_dedupe_key_hashes_the_content(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    body = _sample(vendor_sample)
    del body["context"]["timestamp"]
    changed = _sample(vendor_sample)
    del changed["context"]["timestamp"]
    changed["company"]["traits"]["paid"] = False

    first = normalize_clearbit(body, received_at=received_at).events[0]
    other = normalize_clearbit(changed, received_at=received_at).events[0]

    assert first.dedupe_key != other.dedupe_key
    assert first.occurred_at == received_at


def test_entering_a_configured_surge_segment_is_a_surge(
    vendor_sample: Callable[[str], bytes], received_at: datetime
) -> None:
    config = ClearbitConfig(surge_segments=frozenset({"Test Segment"}))

    (event,) = normalize_clearbit(
        vendor_sample(SAMPLE), config=config, received_at=received_at
    ).events

    assert event.payload.surging is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda body: body["context"].update(trigger="segment_moved"), ("context", "trigger")),
        (lambda body: body["company"].pop("domain"), ("company", "domain")),
        (lambda body: body["company"].update(domain="gmail.com"), ("company", "domain")),
    ],
)
def test_invalid_webhooks_are_schema_errors_with_paths(
    mutate: Callable[[dict[str, Any]], object],
    loc: tuple[str, ...],
    vendor_sample: Callable[[str], bytes],
    received_at: datetime,
) -> None:
    body = _sample(vendor_sample)
    mutate(body)

    with pytest.raises(SchemaError) as raised:
        normalize_clearbit(body, received_at=received_at)

    assert raised.value.errors[0].loc == loc
