"""W3C trace context: into outbox rows, out of stored carriers, and as links."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tandem_shared.envelope import Envelope
from tandem_shared.outbox import outbox_row, outbox_rows
from tandem_shared.telemetry import context_from, current_traceparent, http_telemetry, links_to

_tracer = TracerProvider().get_tracer(__name__)


def _envelope() -> Envelope:
    return Envelope(type="test.event", source="/test", subject="acme.com")


def test_an_outbox_row_carries_the_trace_it_was_written_in() -> None:
    with _tracer.start_as_current_span("handler") as span:
        row = outbox_row("tandem.test", _envelope())
    ctx = span.get_span_context()
    version, trace_id, parent_id, _ = row["headers"]["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert row["headers"]["ce_type"] == "test.event"


def test_a_requests_outbox_rows_all_carry_its_trace_and_their_own_topic_and_type() -> None:
    envelopes = [_envelope(), Envelope(type="other.event", source="/test", subject="b.com")]
    with _tracer.start_as_current_span("handler"):
        expected = current_traceparent()["traceparent"]
        rows = outbox_rows(zip(["tandem.a", "tandem.b"], envelopes, strict=True))
    assert [row["topic"] for row in rows] == ["tandem.a", "tandem.b"]
    assert [row["headers"]["ce_type"] for row in rows] == ["test.event", "other.event"]
    assert {row["headers"]["traceparent"] for row in rows} == {expected}
    assert [row["value"] for row in rows] == [e.to_bytes() for e in envelopes]
    assert outbox_rows([]) == []


def test_an_outbox_row_outside_any_span_has_no_trace_headers() -> None:
    assert outbox_row("tandem.test", _envelope())["headers"] == {"ce_type": "test.event"}


def test_explicit_headers_win_over_the_current_trace() -> None:
    # A dead-lettered or redriven message keeps the trace it arrived with.
    original = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    with _tracer.start_as_current_span("dlq"):
        row = outbox_row("tandem.dlq.x", _envelope(), {"traceparent": original})
    assert row["headers"]["traceparent"] == original


def test_a_stored_carrier_restores_the_parent_of_later_work() -> None:
    with _tracer.start_as_current_span("request") as request:
        carrier = current_traceparent()
    with _tracer.start_as_current_span("send", context=context_from(carrier)) as send:
        pass
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert send.get_span_context().trace_id == request.get_span_context().trace_id


def test_no_carrier_starts_a_new_trace() -> None:
    with _tracer.start_as_current_span("send", context=context_from(None)) as send:
        pass
    assert send.parent is None


def test_links_skip_carriers_without_a_trace() -> None:
    with _tracer.start_as_current_span("one") as one:
        carrier = current_traceparent()
    links = links_to([carrier, None, {}])
    assert [link.context.span_id for link in links] == [one.get_span_context().span_id]
    assert isinstance(links[0], trace.Link)


async def test_requests_continue_the_callers_trace_and_probes_are_not_traced() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry=http_telemetry(provider))
    for path in ("/healthz", "/readyz", "/metrics", "/metrics/sla", "/v1/webhooks/{name}"):
        app.add_api_route(path, lambda: {}, methods=["GET"])
    caller = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for path in ("/healthz", "/readyz", "/metrics", "/metrics/sla"):
            assert (await client.get(path)).status_code == 200
        await client.get("/v1/webhooks/demo", headers={"traceparent": caller})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /metrics/sla", "GET /v1/webhooks/{name}"}
    request = spans["GET /v1/webhooks/{name}"]
    assert request.kind is trace.SpanKind.SERVER
    assert format(request.context.trace_id, "032x") == "c" * 32
    assert request.parent is not None and format(request.parent.span_id, "016x") == "d" * 16


async def test_a_failing_request_ends_its_span_as_an_error() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry=http_telemetry(provider))

    def broken() -> None:
        raise RuntimeError("database unreachable")

    app.add_api_route("/v1/webhooks/{name}", broken, methods=["POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.post("/v1/webhooks/demo")
    assert response.status_code == 500
    [span] = exporter.get_finished_spans()
    assert span.name == "POST /v1/webhooks/{name}"
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 500
