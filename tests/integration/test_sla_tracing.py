"""The SLA monitor's timed events continue the trace of the routing decision that started the clock.

The service runs in this loop with an in-memory span exporter. The routing decision arrives with
a W3C traceparent of the test's own, as the router's relay would send it; the warning, breach and
escalation, fired minutes later from the clock's row, are published in that same trace.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_sla_support import Running, decision, recorded_spans, running_sla, write_config

from tandem_shared import topics
from tandem_shared.events import EventType
from tandem_sla_monitor.adapters.tables import clocks

pytestmark = pytest.mark.integration

# Meeting requests get 1 business minute: warning at 45 s, breach at 60 s, the manager at 120 s.
ESCALATION = """\
  - notify: manager
    after_breach_minutes: 1
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Running, InMemorySpanExporter]]:
    spans = recorded_spans()
    config_dir = write_config(tmp_path_factory.mktemp("sla-tracing"), escalation=ESCALATION)
    try:
        async with running_sla(infra, config_dir) as running:
            yield running, spans
    finally:
        spans.shutdown()  # the provider outlives this module: stop keeping its spans


def trace_and_span(traceparent: str) -> tuple[str, str]:
    """Return the trace id and the parent span id a W3C traceparent names."""
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def of_handoff(spans: InMemorySpanExporter, handoff: str, name: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.name == name and (s.attributes or {}).get("tandem.handoff_id") == handoff
    ]


async def test_warning_breach_and_escalation_continue_the_routing_decisions_trace(
    traced: tuple[Running, InMemorySpanExporter],
) -> None:
    sla, spans = traced
    handoff, account = f"h-{uuid.uuid4().hex[:8]}", f"acct-{uuid.uuid4().hex[:8]}.com"
    trace_id, router_span = os.urandom(16).hex(), os.urandom(8).hex()
    routed = decision(handoff, decided_at=sla.now(), account_key=account)
    await sla.service.infra.producer.send_and_wait(
        topics.ROUTING,
        value=routed.to_bytes(),
        key=routed.key,
        headers=[("traceparent", f"00-{trace_id}-{router_span}-01".encode())],
    )
    await sla.events.wait_for(handoff, EventType.SLA_STARTED)

    # The clock row keeps the context of the span that consumed the decision.
    async with sla.service.infra.sessions() as session:
        stored = (
            await session.execute(
                sa.select(clocks.c.trace_context).where(clocks.c.handoff_id == handoff)
            )
        ).scalar_one()
    stored_trace, consume_span = trace_and_span(stored["traceparent"])
    assert stored_trace == trace_id

    fired = []
    for seconds, sla_type, firing in (
        (46, EventType.SLA_WARNING, "warning"),
        (15, EventType.SLA_BREACHED, "breach"),
        (60, EventType.SLA_ESCALATED, "escalation"),
    ):
        sla.now.advance(seconds=seconds)
        [event] = await sla.events.wait_for(handoff, sla_type)
        [span] = of_handoff(spans, handoff, f"sla fire {firing}")
        fired.append((event, span))

    # (Looked up now: the consume span ends after the commit that let SLA_STARTED out.)
    [consumed] = [s for s in spans.get_finished_spans() if span_id(s) == consume_span]
    assert consumed.name == f"{topics.ROUTING} process"
    assert consumed.parent is not None and format(consumed.parent.span_id, "016x") == router_span
    for event, span in fired:
        # Each firing is a child of the stored context: the timer restored it, hours later.
        assert span.context is not None and span.parent is not None
        assert format(span.context.trace_id, "032x") == trace_id
        assert format(span.parent.span_id, "016x") == consume_span
        # Its outbox row and the Kafka record the relay sent carry the firing's span onward.
        assert trace_and_span(sla.events.headers[event.id]["traceparent"]) == (
            trace_id,
            span_id(span),
        )

    # The breach's alert request, in the same transaction, goes on to alerts in that trace too.
    breach_event, breach_span = fired[1]
    [breach_alert] = await sla.events.wait_for(
        handoff,
        EventType.ALERT_REQUESTED,
        where=lambda e: e.data["kind"] == "sla_breach",
    )
    # The breach and its alert request left in the breach span's context (Kafka headers).
    published = [sla.events.headers[e.id]["traceparent"] for e in (breach_event, breach_alert)]
    assert {trace_and_span(traceparent) for traceparent in published} == {
        (trace_id, span_id(breach_span))
    }
    assert breach_span.attributes is not None
    assert list(breach_span.attributes["tandem.sla.events"]) == [  # type: ignore[arg-type]
        EventType.SLA_BREACHED.value,
        EventType.ALERT_REQUESTED.value,
    ]
