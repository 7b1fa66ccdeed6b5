"""The HTTP API vendors call: POST /v1/webhooks/{source} and POST /v1/uploads/{source}."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_ingest import handlers
from tandem_ingest.adapters.webhook_store import WebhookStore
from tandem_ingest.domain.deliveries import (
    Delivery,
    accepted_content_types,
    accepts_content_type,
    authenticate,
    check_token,
)
from tandem_ingest.domain.errors import (
    MalformedBodyError,
    OrganizationNotAllowedError,
    SchemaError,
    SignatureError,
)
from tandem_ingest.domain.ratelimit import TokenBucket, retry_after_header
from tandem_ingest.domain.salesforce import outbound_message_ack
from tandem_ingest.domain.signatures import request_uri
from tandem_ingest.domain.sources import Source, SourceKind
from tandem_ingest.settings import IngestOptions
from tandem_shared.uow import unit_of_work

DELIVERIES = Counter(
    "tandem_ingest_deliveries_total",
    "Deliveries answered, by source and status",
    ["source", "status"],
)

# Kept with each archived payload: what proves where it came from. Never credentials.
_ARCHIVED_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-hubspot-signature",
        "x-hubspot-signature-version",
        "x-hubspot-signature-v3",
        "x-hubspot-request-timestamp",
        "x-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-request-id",
        "traceparent",
    }
)


@dataclass
class IngestContext:
    """What the endpoints need: sources, sessions, limits and clocks (injected for tests)."""

    sources: Mapping[str, Source]
    sessions: async_sessionmaker[AsyncSession]  # transactions, for uploads
    options: IngestOptions
    webhooks: WebhookStore  # the hot path's own connections: one statement per webhook
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    on_deferred: Callable[[], None] = lambda: None  # lookups were queued (wakes their worker)

    def wait_for_token(self, source: Source) -> float:
        """Take a request token of the source; return 0 or the seconds to wait."""
        now = self.monotonic()
        bucket = self.buckets.get(source.name)
        if bucket is None:
            bucket = self.buckets[source.name] = TokenBucket(source.spec.rate_limit, now=now)
        return bucket.take(now=now)


class Refusal(Exception):
    """An HTTP refusal raised before the delivery reaches the core."""

    def __init__(self, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def _json(status: int, content: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def _soap_fault(status: int, message: str) -> Response:
    code = "soapenv:Client" if status < 500 else "soapenv:Server"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring></soapenv:Fault></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    return Response(body.encode(), status, media_type="text/xml; charset=utf-8")


def _refuse(source: Source | None, refusal: Refusal) -> Response:
    DELIVERIES.labels(source.name if source else "", str(refusal.status)).inc()
    if source is not None and source.kind is SourceKind.SALESFORCE_OUTBOUND:
        response = _soap_fault(refusal.status, str(refusal.detail))
        response.headers.update(refusal.headers)
        return response
    return _json(refusal.status, {"detail": refusal.detail}, refusal.headers)


def _source(ctx: IngestContext, name: str, *, upload: bool) -> Source:
    source = ctx.sources.get(name)
    if source is None:
        raise Refusal(404, f"unknown source {name!r}")
    if source.is_upload != upload:
        where = "/v1/uploads/" if source.is_upload else "/v1/webhooks/"
        raise Refusal(404, f"source {name!r} is served at {where}{name}")
    return source


def _admit(source: Source, request: Request, limit: int) -> None:
    """Refuse what can be refused before reading the body: content type and declared size."""
    if not accepts_content_type(source.kind, request.headers.get("content-type")):
        accepted = ", ".join(accepted_content_types(source.kind))
        raise Refusal(415, f"Content-Type must be one of: {accepted}")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Refusal(400, "invalid Content-Length")
        if int(declared) > limit:
            raise Refusal(413, f"body over the {limit}-byte limit")


def _throttle(ctx: IngestContext, source: Source) -> None:
    """Take one of the source's request tokens, or refuse with 429 and when to retry.

    Called once the request proved it is from the source's vendor: unsigned junk sent to the
    source's URL is refused 401 without draining the vendor's own allowance.
    """
    wait = ctx.wait_for_token(source)
    if wait:
        raise Refusal(429, "rate limit exceeded", {"Retry-After": retry_after_header(wait)})


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    # Content-Length can be absent (chunked) or wrong: count what actually arrives.
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"body over the {limit}-byte limit")
        yield chunk


def _archived_headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k in _ARCHIVED_HEADERS}


def _delivery(ctx: IngestContext, request: Request, body: bytes) -> Delivery:
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    uri = request_uri(
        scheme=scope.get("scheme", "http"),
        host=request.headers.get("host", ""),
        raw_path=raw_path.decode("latin-1"),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=request.headers,
        trust_forwarded=ctx.options.trust_forwarded,
    )
    return Delivery(
        body=body,
        headers=request.headers,
        method=request.method,
        uri=uri,
        token=request.query_params.get("token"),
    )


def _answer(source: Source, receipt: handlers.Receipt) -> Response:
    DELIVERIES.labels(source.name, str(receipt.status)).inc()
    payload_id = str(receipt.payload_id)
    if receipt.status != handlers.ACCEPTED:
        detail = receipt.summary.get("errors") or receipt.summary.get("error")
        if source.kind is SourceKind.SALESFORCE_OUTBOUND:
            return _soap_fault(receipt.status, orjson.dumps(detail).decode())
        return _json(receipt.status, {"detail": detail, "payload_id": payload_id})
    if source.kind is SourceKind.SALESFORCE_OUTBOUND:
        return Response(outbound_message_ack(), 200, media_type="text/xml; charset=utf-8")
    return _json(receipt.status, {"payload_id": payload_id, **receipt.summary})


def _core_refusal(exc: Exception) -> Refusal:
    if isinstance(exc, SignatureError):
        return Refusal(401, f"signature refused: {exc.reason}")
    if isinstance(exc, OrganizationNotAllowedError):
        return Refusal(403, str(exc))
    if isinstance(exc, SchemaError):
        return Refusal(422, [error.as_dict() for error in exc.errors])
    return Refusal(400, str(exc))


def _observed_on(request: Request, received_at: datetime) -> date:
    raw = request.query_params.get("date")
    if raw is None:
        return received_at.astimezone(UTC).date()
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise Refusal(400, f"date must be YYYY-MM-DD: {raw!r}") from exc


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def ingest_router(ctx: IngestContext) -> APIRouter:
    """Build the vendor-facing routes over a context."""
    router = APIRouter(tags=["ingest"])

    @router.post("/v1/webhooks/{name}")
    async def webhook(name: str, request: Request) -> Response:
        source = None
        try:
            source = _source(ctx, name, upload=False)
            limit = source.spec.max_body_bytes or ctx.options.max_body_bytes
            _admit(source, request, limit)
            body = b"".join([chunk async for chunk in _limited(request.stream(), limit)])
            delivery, received_at = _delivery(ctx, request, body), ctx.clock()
            scheme = authenticate(source, delivery, now=received_at)
            _throttle(ctx, source)
            receipt = await handlers.receive_webhook(
                ctx.webhooks,
                source=source,
                delivery=delivery,
                scheme=scheme,
                received_at=received_at,
                archived_headers=_archived_headers(request),
            )
        except Refusal as refusal:
            return _refuse(source, refusal)
        except (SignatureError, OrganizationNotAllowedError) as exc:
            return _refuse(source, _core_refusal(exc))
        if receipt.deferred:
            ctx.on_deferred()
        return _answer(source, receipt)

    @router.post("/v1/uploads/{name}")
    async def upload(name: str, request: Request) -> Response:
        source = None
        try:
            source = _source(ctx, name, upload=True)
            limit = source.spec.max_body_bytes or ctx.options.max_upload_bytes
            _admit(source, request, limit)
            scheme = check_token(source, _bearer(request))
            _throttle(ctx, source)
            received_at = ctx.clock()
            # The events' outbox rows go in with their dedupe claims, one statement per batch
            # (only a key claimed now publishes), so this unit of work emits nothing itself.
            async with unit_of_work(ctx.sessions) as uow:
                receipt = await handlers.receive_upload(
                    uow.session,
                    source=source,
                    chunks=_limited(request.stream(), limit),
                    scheme=scheme,
                    observed_on=_observed_on(request, received_at),
                    received_at=received_at,
                    archived_headers=_archived_headers(request),
                    chunk_bytes=ctx.options.upload_chunk_bytes,
                    batch_events=ctx.options.upload_batch_events,
                )
        except Refusal as refusal:
            return _refuse(source, refusal)
        except (SignatureError, MalformedBodyError, SchemaError) as exc:
            return _refuse(source, _core_refusal(exc))
        return _answer(source, receipt)

    return router
