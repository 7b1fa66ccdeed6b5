"""Structured JSON logs with trace ids, OpenTelemetry tracing, W3C context in Kafka headers."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tandem_shared.settings import TelemetrySettings

KafkaHeaders = list[tuple[str, bytes]]
# Probes and scrapes every few seconds would drown the traces that matter (exact paths:
# sla-monitor's /metrics/sla stays traced).
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def configure_logging(settings: TelemetrySettings, *, service: str) -> None:
    """Send structlog and stdlib logging to stdout as JSON lines (or pretty in a terminal)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
        lambda _, __, ev: {"service": service, **ev},
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_tracing(
    settings: TelemetrySettings, *, service: str, extra_processors: Iterable[SpanProcessor] = ()
) -> TracerProvider:
    """Install the tracer provider: OTLP/HTTP export when an endpoint is set, else none."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"tandem-{service}"}))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def http_telemetry(provider: trace.TracerProvider | None = None) -> TelemetryConfig:
    """FastAPI's own server spans, continuing the caller's W3C trace context; probes untraced.

    FastAPI's built-in telemetry, not the contrib ASGI middleware: the same server span for
    about half the CPU per request (the ingest webhook is the hot path). HTTP metrics are
    Prometheus' (`/metrics`), and spans per dependency and serialization step are left out.
    """
    config: TelemetryConfig = {
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "exclude": _untraced,
    }
    if provider is not None:
        config["tracer_provider"] = provider
    return config


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def tracer(name: str) -> trace.Tracer:
    """Return a tracer for a module."""
    return trace.get_tracer(name)


def inject_headers(headers: KafkaHeaders | None = None) -> KafkaHeaders:
    """Return Kafka headers with the current W3C trace context added."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    out = list(headers or [])
    out.extend((k, v.encode()) for k, v in carrier.items())
    return out


def extract_context(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    """Return the trace context carried in Kafka headers."""
    carrier = {k: v.decode(errors="replace") for k, v in (headers or ()) if v is not None}
    return propagate.extract(carrier)


def current_traceparent() -> dict[str, str]:
    """Return the current trace context as a dict (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """Return the trace context a stored carrier (from current_traceparent) holds."""
    return propagate.extract(dict(carrier or {}))


def links_to(carriers: Iterable[Mapping[str, str] | None]) -> list[trace.Link]:
    """Return span links to the traces of stored carriers (work serving several requests)."""
    contexts = (trace.get_current_span(context_from(c)).get_span_context() for c in carriers)
    return [trace.Link(ctx) for ctx in contexts if ctx.is_valid]
