"""Envelope.to_bytes writes exactly the bytes orjson wrote over model_dump(mode="json")."""

from __future__ import annotations

import types
from datetime import datetime
from decimal import Decimal
from typing import Any, Union, get_args, get_origin

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tandem_shared.directory import WorkingHours
from tandem_shared.envelope import Envelope, encode_envelope
from tandem_shared.events import PAYLOADS

# Aware datetimes in any zone (with sub-second parts), as the canonical payloads carry them.
_datetimes = st.datetimes(timezones=st.timezones())
# What raw vendor properties (`changed`, `properties`, ...) hold: JSON scalars, unicode,
# non-finite floats, decimals, datetimes and nested containers with None inside.
# Integers stay within 64 bits: orjson refused larger ones, where pydantic writes them (and no
# vendor body yields one: orjson.loads reads them as floats).
_ints = st.integers(-(2**63), 2**63 - 1)
_scalars = st.none() | st.booleans() | _ints | st.floats() | st.text()
_json_values = st.recursive(
    _scalars | st.decimals() | _datetimes,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_json_dicts = st.dictionaries(st.text(), _json_values, max_size=4)


def _strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """Return values for a payload field's annotation, filling optional fields too."""
    origin = get_origin(annotation)
    if annotation is datetime:
        return _datetimes
    if annotation is WorkingHours:  # validated (weekdays, end after start): the defaults do
        return st.builds(WorkingHours)
    if annotation is int:
        return _ints
    if origin is dict and get_args(annotation)[1] is Any:
        return _json_dicts
    if origin in (Union, types.UnionType):
        return st.one_of(*(_strategy(arg) for arg in get_args(annotation)))
    if origin is list:
        return st.lists(_strategy(get_args(annotation)[0]), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _models(annotation)
    return st.from_type(annotation)


def _models(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    fields = {name: _strategy(field.annotation) for name, field in model.model_fields.items()}
    return st.builds(model, **fields)


def _orjson_bytes(envelope: Envelope) -> bytes:
    """The serialization to_bytes used before it wrote through pydantic's JSON writer."""
    return orjson.dumps(envelope.model_dump(mode="json", exclude_none=True))


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_event_type_serializes_to_the_same_bytes(
    event_type: str, data: st.DataObject
) -> None:
    payload = data.draw(_models(PAYLOADS[event_type]))
    envelope = Envelope.wrap(
        payload,
        type=event_type,
        source="/ingest/hubspot",
        subject=data.draw(st.none() | st.text()),
        time=data.draw(_datetimes),
        causationid=data.draw(st.none() | st.text()),
    )
    assert envelope.to_bytes() == _orjson_bytes(envelope)


@settings(deadline=None)
@given(data=_json_dicts, traceparent=st.none() | st.text())
def test_raw_python_values_in_data_serialize_to_the_same_bytes(
    data: dict[str, Any], traceparent: str | None
) -> None:
    # Envelopes built by hand may carry datetimes and decimals that wrap would have dumped first.
    envelope = Envelope(type="t", source="/s", data=data, traceparent=traceparent)
    assert envelope.to_bytes() == _orjson_bytes(envelope)


def test_sample_bytes_are_compact_utf8_without_none_attributes() -> None:
    # subject, traceparent, tracestate and causationid are None: left out, as consumers expect.
    envelope = Envelope(
        id="e1",
        type="t",
        source="/s",
        time=datetime.fromisoformat("2026-11-23T15:00:00.5+05:30"),
        data={"name": "Zoë ✓ 🎉", "amount": Decimal("12.50"), "score": 1e20, "gone": None},
    )
    assert (
        envelope.to_bytes()
        == (
            '{"specversion":"1.0","id":"e1","type":"t","source":"/s",'
            '"time":"2026-11-23T15:00:00.500000+05:30","datacontenttype":"application/json",'
            '"schemaversion":1,"data":{"name":"Zoë ✓ 🎉","amount":"12.50",'
            '"score":1e+20,"gone":null}}'
        ).encode()
    )


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encode_envelope_writes_what_the_envelope_writes(
    event_type: str, data: st.DataObject
) -> None:
    payload = data.draw(_models(PAYLOADS[event_type]))
    attributes = {
        "type": event_type,
        "source": "/ingest/hubspot",
        "subject": data.draw(st.none() | st.text()),
        "id": data.draw(st.text(min_size=1)),
        "time": data.draw(_datetimes),
        "causationid": data.draw(st.none() | st.text()),
        "schemaversion": data.draw(st.integers(1, 3)),
    }
    envelope = Envelope.wrap(payload, **attributes)
    encoded = encode_envelope(payload, **attributes)
    assert encoded.to_bytes() == envelope.to_bytes()
    assert (encoded.id, encoded.type, encoded.key) == (envelope.id, envelope.type, envelope.key)
