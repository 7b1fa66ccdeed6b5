"""Use cases: receive a webhook (one autocommit statement) or an upload (the caller's
transaction commits it), durably."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_ingest.adapters import repository
from tandem_ingest.adapters.webhook_store import WebhookStore
from tandem_ingest.domain.bombora import Item
from tandem_ingest.domain.deliveries import Delivery, normalize, surge_reader
from tandem_ingest.domain.errors import MalformedBodyError, SchemaError
from tandem_ingest.domain.normalized import ElementError, Lookup, NormalizedEvent, NormalizeResult
from tandem_ingest.domain.sources import Source

ACCEPTED = 202
MALFORMED = 400
UNPROCESSABLE = 422
MAX_REPORTED_ERRORS = 100  # an upload may have millions of bad rows: report the first ones


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to a delivery that was authenticated and archived."""

    payload_id: uuid.UUID
    status: int
    summary: dict[str, Any]
    deferred: bool = False  # lookups were queued: wake the worker that fills them in


def summarize(result: NormalizeResult, *, published: int) -> dict[str, Any]:
    """Return the counts and element errors of an accepted delivery.

    `events` counts the lookups too (events waiting for the vendor's API); `deferred` says how
    many of them there are.
    """
    total = len(result.events) + len(result.lookups)
    return {
        "events": total,
        "published": published,
        "duplicates": total - published,
        "deferred": len(result.lookups),
        "ignored": result.ignored,
        "errors": [error.as_dict() for error in result.errors],
    }


async def receive_webhook(
    store: WebhookStore,
    *,
    source: Source,
    delivery: Delivery,
    scheme: str,
    received_at: datetime,
    archived_headers: Mapping[str, str],
) -> Receipt:
    """Normalize, archive and outbox one authenticated webhook, atomically (403 raises).

    `scheme` is the signature scheme that authenticated it (`deliveries.authenticate`).
    """
    events: tuple[NormalizedEvent, ...] = ()
    lookups: tuple[Lookup, ...] = ()
    summary: dict[str, Any]
    try:
        result = normalize(source, delivery.body, received_at=received_at)
    except MalformedBodyError as exc:
        status, summary = MALFORMED, {"error": str(exc)}
    except SchemaError as exc:
        status, summary = UNPROCESSABLE, {"errors": [e.as_dict() for e in exc.errors]}
    else:
        status, events, lookups = ACCEPTED, result.events, result.lookups
        summary = summarize(result, published=0)
    # Authenticated but unusable bodies are archived too: a fixed normalizer can replay them.
    payload = repository.ArchivedPayload(
        id=uuid.uuid4(),
        source=source.name,
        kind=source.kind.value,
        received_at=received_at,
        content_type=archived_headers.get("content-type"),
        headers=dict(archived_headers),
        body=delivery.body,
        body_bytes=len(delivery.body),
        signature_scheme=scheme,
        status=status,
        result=summary,
    )
    counted = status == ACCEPTED
    published = await store.record_delivery(payload, events, counted=counted, lookups=lookups)
    if counted:
        total = len(events) + len(lookups)
        summary.update(published=published, duplicates=total - published)
    return Receipt(payload.id, status, summary, deferred=bool(lookups))


@dataclass(slots=True)
class _UploadTally:
    events: int = 0
    published: int = 0
    errors: int = 0
    reported: list[dict[str, Any]] = field(default_factory=list)
    pending: list[NormalizedEvent] = field(default_factory=list)

    def add(self, items: list[Item]) -> None:
        for item in items:
            if isinstance(item, ElementError):
                self.errors += 1
                if len(self.reported) < MAX_REPORTED_ERRORS:
                    self.reported.append(item.as_dict())
            else:
                self.events += 1
                self.pending.append(item)


async def receive_upload(
    session: AsyncSession,
    *,
    source: Source,
    chunks: AsyncIterator[bytes],
    scheme: str,
    observed_on: date,
    received_at: datetime,
    archived_headers: Mapping[str, str],
    chunk_bytes: int,
    batch_events: int,
) -> Receipt:
    """Stream an authenticated Company Surge file into the archive and outbox, bounded memory.

    `scheme` is how it was authenticated (`deliveries.check_token`).
    """
    reader = surge_reader(source, observed_on=observed_on)
    payload_id = uuid.uuid4()
    await repository.archive_payload(
        session,
        repository.ArchivedPayload(
            id=payload_id,
            source=source.name,
            kind=source.kind.value,
            received_at=received_at,
            content_type=archived_headers.get("content-type"),
            headers=dict(archived_headers),
            body=None,
            body_bytes=0,
            signature_scheme=scheme,
            status=ACCEPTED,
            result={},
            meta={"observed_on": observed_on.isoformat()},
        ),
    )
    tally, size, seq = _UploadTally(), 0, 0
    async for chunk in _coalesce(chunks, chunk_bytes):
        await repository.add_chunk(session, payload_id, seq, chunk)
        seq, size = seq + 1, size + len(chunk)
        tally.add(reader.feed(chunk))
        if len(tally.pending) >= batch_events:
            tally.published += await _flush(session, tally, payload_id)
    tally.add(reader.close())  # raises SchemaError for a file without a header row
    tally.published += await _flush(session, tally, payload_id)
    if tally.errors and not tally.events:
        raise SchemaError([ElementError(None, (), f"no usable row: {tally.errors} refused")])
    summary = {
        "rows": reader.rows,
        "events": tally.events,
        "published": tally.published,
        "duplicates": tally.events - tally.published,
        "ignored": reader.ignored,
        "error_count": tally.errors,
        "errors": tally.reported,
    }
    await repository.finish_upload(
        session, payload_id, body_bytes=size, status=ACCEPTED, result=summary
    )
    return Receipt(payload_id, ACCEPTED, summary)


async def _flush(session: AsyncSession, tally: _UploadTally, payload_id: uuid.UUID) -> int:
    published = await repository.publish_new(session, tally.pending, payload_id=payload_id)
    tally.pending = []
    return published


async def _coalesce(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    # ASGI servers hand over small pieces: archive them as fewer, larger rows.
    buffer = bytearray()
    async for piece in chunks:
        buffer += piece
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
