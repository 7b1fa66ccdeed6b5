"""One webhook, one trace: ingest's request, router's and alerts' Kafka consumes, the Slack call.

The services run as real processes exporting over OTLP/HTTP to a receiver in this test. The
webhook carries a W3C traceparent of the test's own, so the trace is found among the spans of
every other test module's events on the shared topics. The same webhook's path shows in each
service's Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from service_processes import ServiceProcess, Stack
from skeleton_stack import Account, meeting_request, process, running_stack
from slack_server import FakeSlack, serve_local
from tandem_shared.local.embedded import free_port

SERVICES = ("ingest", "router", "alerts")
ACCOUNT = Account.fresh("traced")
# One handoff per account is open at a time: the metrics test's webhook comes from another.
METERED = Account.fresh("metered")
AVA = "U0AVA0001"  # the account's AE
CLIENT = Span.SPAN_KIND_CLIENT


@dataclass(frozen=True)
class Received:
    """A span as exported, with the service that exported it."""

    service: str
    span: Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def attributes(self) -> dict[str, str]:
        return {a.key: a.value.string_value for a in self.span.attributes}


class OtlpReceiver:
    """The OTLP/HTTP traces endpoint of a collector, keeping every span it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[Received] = []
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = await serve_local(self.port, [web.post("/v1/traces", self._traces)])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans.extend(Received(attrs["service.name"], s) for s in scope.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def trace(self, trace_id: str) -> list[Received]:
        """Return the spans of one trace."""
        return [r for r in self.spans if r.trace_id == trace_id]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced(  # type: ignore[no-untyped-def]
    infra, tmp_path_factory
) -> AsyncIterator[tuple[Stack, FakeSlack, Path, OtlpReceiver]]:
    receiver = OtlpReceiver()
    await receiver.start()
    # Export each span within a fifth of a second, not the SDK's five.
    env = {"TANDEM_TELEMETRY__OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    tmp = tmp_path_factory.mktemp("tracing")
    try:
        async with running_stack(infra, tmp, [ACCOUNT, METERED], SERVICES, env) as running:
            yield (*running, receiver)
    finally:
        await receiver.stop()


def _lineage(spans: list[Received], span: Received) -> list[tuple[str, str, int]]:
    """Return (service, name, kind) of `span` and of each of its ancestors, root last."""
    by_id = {r.span.span_id: r for r in spans}
    chain = [span]
    while (parent := by_id.get(chain[-1].span.parent_span_id)) is not None:
        chain.append(parent)
    return [(r.service, r.span.name, r.span.kind) for r in chain]


async def test_one_webhook_is_one_trace_from_the_request_to_the_slack_call(traced) -> None:  # type: ignore[no-untyped-def]
    stack, slack, config, receiver = traced
    trace_id, caller_span = os.urandom(16).hex(), os.urandom(8).hex()
    body, headers = meeting_request(config, ACCOUNT)
    headers["traceparent"] = f"00-{trace_id}-{caller_span}-01"
    async with httpx.AsyncClient(base_url=process(stack, "ingest").url) as client:
        response = await client.post("/v1/webhooks/demo", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text

    def slack_call() -> Received | None:
        return next((r for r in receiver.trace(trace_id) if r.span.kind == CLIENT), None)

    def complete() -> bool:
        # Parents end after their children: wait until the Slack call's whole ancestry arrived.
        posted = slack_call()
        return posted is not None and len(_lineage(receiver.trace(trace_id), posted)) >= 5

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not complete():
        await asyncio.sleep(0.2)
    spans = receiver.trace(trace_id)
    posted = slack_call()
    assert posted is not None, [(r.service, r.span.name) for r in spans]
    assert [r for r in spans if r.span.kind == CLIENT] == [posted]  # Slack was called once
    assert posted.attributes["url.full"] == slack.base_url + "chat.postMessage"
    # The Slack call descends, hop by hop, from the webhook request that caused it.
    assert _lineage(spans, posted) == [
        ("tandem-alerts", "slack chat.postMessage", CLIENT),
        ("tandem-alerts", "alert deliver", Span.SPAN_KIND_INTERNAL),
        ("tandem-alerts", "tandem.alert-requests process", Span.SPAN_KIND_CONSUMER),
        ("tandem-router", "tandem.engagement process", Span.SPAN_KIND_CONSUMER),
        ("tandem-ingest", "POST /v1/webhooks/{name}", Span.SPAN_KIND_SERVER),
    ]
    root = next(r for r in spans if r.span.kind == Span.SPAN_KIND_SERVER)
    assert root.span.parent_span_id.hex() == caller_span  # it continued the caller's trace
    # One trace, nothing detached: every span's parent is another span of it, or the caller's.
    ids = {r.span.span_id.hex() for r in spans} | {caller_span}
    assert all(r.span.parent_span_id.hex() in ids for r in spans), [
        (r.service, r.span.name) for r in spans
    ]
    assert [m for m in slack.messages if m.channel == AVA and ACCOUNT.name in m.text]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(service: ServiceProcess) -> Samples:
    async with httpx.AsyncClient(base_url=service.url) as client:
        text = (await client.get("/metrics")).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def test_the_webhooks_path_shows_in_every_services_metrics(traced) -> None:  # type: ignore[no-untyped-def]
    stack, _, config, _ = traced
    services = {name: process(stack, name) for name in SERVICES}
    before = {name: await _scrape(s) for name, s in services.items()}
    body, headers = meeting_request(config, METERED)
    async with httpx.AsyncClient(base_url=services["ingest"].url) as client:
        response = await client.post("/v1/webhooks/demo", content=body, headers=headers)
    assert response.status_code == 202, response.text

    router_in = {"group": "router", "topic": "tandem.engagement"}
    alerts_in = {"group": "alerts", "topic": "tandem.alert-requests"}
    # Webhook responses by status, events out per topic, events in, handler latency, outcomes.
    expected = [
        ("ingest", "tandem_ingest_deliveries_total", {"source": "demo", "status": "202"}),
        ("ingest", "tandem_events_published_total", {"topic": "tandem.engagement"}),
        ("router", "tandem_events_consumed_total", {"outcome": "processed", **router_in}),
        ("router", "tandem_handler_seconds_count", router_in),
        ("router", "tandem_events_published_total", {"topic": "tandem.alert-requests"}),
        ("alerts", "tandem_events_consumed_total", {"outcome": "processed", **alerts_in}),
        ("alerts", "tandem_alert_attempts_total", {"channel": "slack", "outcome": "sent"}),
    ]

    async def missing() -> list[tuple[str, str, dict[str, str]]]:
        after = {name: await _scrape(s) for name, s in services.items()}
        return [
            (service, name, labels)
            for service, name, labels in expected
            if _total(after[service], name, **labels) <= _total(before[service], name, **labels)
        ]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and await missing():
        await asyncio.sleep(0.5)
    assert await missing() == []
    # Consumer lag, per partition, of the partition the event was fetched from.
    lags = [
        labels
        for name, labels in (await _scrape(services["router"]))
        if name == "tandem_consumer_lag"
    ]
    assert "tandem.engagement" in {dict(labels)["topic"] for labels in lags}
    # And every service is ready: broker and database reachable, its consumer assigned, moving.
    for service in services.values():
        async with httpx.AsyncClient(base_url=service.url) as client:
            ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"}), service.name
