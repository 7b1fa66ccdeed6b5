"""Every query of the ingest service: archive, dedupe keys, outbox rows, replay reads, purges."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_ingest.adapters.tables import dedupe_keys, raw_payload_chunks, raw_payloads
from tandem_ingest.domain.normalized import Lookup, NormalizedEvent
from tandem_shared.outbox import outbox_rows


@dataclass(frozen=True, slots=True)
class ArchivedPayload:
    """One raw delivery as archived: what arrived, how it was verified, what it became."""

    id: uuid.UUID
    source: str
    kind: str
    received_at: datetime
    content_type: str | None
    headers: dict[str, str]
    body: bytes | None
    body_bytes: int
    signature_scheme: str
    status: int
    result: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


async def archive_payload(session: AsyncSession, payload: ArchivedPayload) -> None:
    """Insert the archive row of a delivery in the session's transaction."""
    await session.execute(sa.insert(raw_payloads).values(**asdict(payload)))


async def finish_upload(
    session: AsyncSession, payload_id: uuid.UUID, *, body_bytes: int, status: int, result: Any
) -> None:
    """Record the size and outcome of an upload once its last chunk is read."""
    await session.execute(
        sa.update(raw_payloads)
        .where(raw_payloads.c.id == payload_id)
        .values(body_bytes=body_bytes, status=status, result=result)
    )


async def add_chunk(session: AsyncSession, payload_id: uuid.UUID, seq: int, data: bytes) -> None:
    """Archive one chunk of an upload."""
    await session.execute(
        sa.insert(raw_payload_chunks).values(payload_id=payload_id, seq=seq, data=data)
    )


# The keys are claimed in sorted order, one lock order for concurrent deliveries (no deadlock); a
# concurrent duplicate waits for the first transaction, then finds its key taken. Only events
# whose key was claimed now are outboxed (unless :every, for a replay). Lookups (rows with a
# lookup kind and no topic) claim their event's key the same way and wait in `lookups`.
_CLAIM_CTES = """
    incoming AS (
        SELECT * FROM unnest(
            :sources, :dedupe_keys, :event_ids, :topics, :kafka_keys, :values, :headers,
            :lookup_kinds, :lookup_requests
        ) WITH ORDINALITY AS t(
            source, dedupe_key, event_id, topic, key, value, headers, lookup_kind, lookup_request, n
        )
    ), claimed AS (
        INSERT INTO dedupe_keys (source, dedupe_key, event_id, payload_id)
        SELECT source, dedupe_key, event_id, :payload_id FROM incoming
        ORDER BY source, dedupe_key
        ON CONFLICT DO NOTHING
        RETURNING event_id
    ), published AS (
        INSERT INTO outbox (event_id, topic, key, value, headers)
        SELECT i.event_id, i.topic, i.key, i.value, i.headers::jsonb
        FROM incoming i
        WHERE i.lookup_kind IS NULL
            AND (:every OR i.event_id IN (SELECT event_id FROM claimed))
        ORDER BY i.n
    ), deferred AS (
        INSERT INTO lookups (event_id, source, dedupe_key, source_name, kind, request)
        SELECT i.event_id, i.source, i.dedupe_key, :source_name, i.lookup_kind,
            i.lookup_request::jsonb
        FROM incoming i
        WHERE i.lookup_kind IS NOT NULL
            AND (:every OR i.event_id IN (SELECT event_id FROM claimed))
        ON CONFLICT (event_id) DO NOTHING
    )"""
# Data-modifying CTEs run whether or not the query reads them: only the claims are counted.
_COUNTS = "SELECT count(*) FROM claimed"
_CLAIM_PARAMS = (
    sa.bindparam("sources", type_=ARRAY(sa.Text)),
    sa.bindparam("dedupe_keys", type_=ARRAY(sa.Text)),
    sa.bindparam("event_ids", type_=ARRAY(sa.Text)),
    sa.bindparam("topics", type_=ARRAY(sa.Text)),
    sa.bindparam("kafka_keys", type_=ARRAY(sa.LargeBinary)),
    sa.bindparam("values", type_=ARRAY(sa.LargeBinary)),
    sa.bindparam("headers", type_=ARRAY(sa.Text)),
    sa.bindparam("lookup_kinds", type_=ARRAY(sa.Text)),
    sa.bindparam("lookup_requests", type_=ARRAY(sa.Text)),
    sa.bindparam("source_name", type_=sa.Text),
    sa.bindparam("payload_id", type_=UUID(as_uuid=True)),
    sa.bindparam("every", type_=sa.Boolean),
)
_CLAIM_AND_OUTBOX = sa.text(f"WITH {_CLAIM_CTES} {_COUNTS}").bindparams(*_CLAIM_PARAMS)

# A webhook in ONE statement: archive row, dedupe claims and outbox rows commit together even
# without a transaction, so the hot path needs one round trip (no BEGIN/COMMIT). The archived
# result gets the published/duplicates counts only the claim knows.
RECORD_DELIVERY = sa.text(
    f"""
    WITH {_CLAIM_CTES}, archived AS (
        INSERT INTO raw_payloads (
            id, source, kind, received_at, content_type, headers, body, body_bytes,
            signature_scheme, status, result, meta
        )
        SELECT :payload_id, :source, :kind, :received_at, :content_type,
            CAST(:archived_headers AS jsonb), :body, CAST(:body_bytes AS bigint), :signature_scheme,
            CAST(:status AS smallint),
            CASE WHEN :counted THEN CAST(:result AS jsonb) || jsonb_build_object(
                'published', (SELECT count(*) FROM claimed),
                'duplicates', :event_count - (SELECT count(*) FROM claimed)
            ) ELSE CAST(:result AS jsonb) END,
            CAST(:meta AS jsonb)
    )
    {_COUNTS}
    """
).bindparams(
    *_CLAIM_PARAMS,
    sa.bindparam("received_at", type_=sa.DateTime(timezone=True)),
    sa.bindparam("body", type_=sa.LargeBinary),
    sa.bindparam("counted", type_=sa.Boolean),
    sa.bindparam("event_count", type_=sa.Integer),
)


_PLAIN_ARCHIVE_COLUMNS = (
    "source",
    "kind",
    "received_at",
    "content_type",
    "body",
    "body_bytes",
    "signature_scheme",
    "status",
)


def delivery_params(
    payload: ArchivedPayload,
    events: Sequence[NormalizedEvent],
    *,
    counted: bool,
    lookups: Sequence[Lookup] = (),
) -> dict[str, Any]:
    """The parameters of RECORD_DELIVERY for one webhook and its events (see WebhookStore)."""
    params = _claim_params(
        events, lookups, payload_id=payload.id, every=False, source_name=payload.source
    )
    params.update(
        {column: getattr(payload, column) for column in _PLAIN_ARCHIVE_COLUMNS},
        archived_headers=_json_text(payload.headers),  # `headers` names the outbox rows' ones
        result=_json_text(payload.result),
        meta=_json_text(payload.meta),
        counted=counted,
        event_count=len(events) + len(lookups),
    )
    return params


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def publish_new(
    session: AsyncSession, events: Sequence[NormalizedEvent], *, payload_id: uuid.UUID
) -> int:
    """Claim the events' dedupe keys; outbox only those claimed now and return how many."""
    return await _claim_and_outbox(session, events, (), payload_id=payload_id, every=False)


async def publish_again(
    session: AsyncSession,
    events: Sequence[NormalizedEvent],
    *,
    payload_id: uuid.UUID,
    lookups: Sequence[Lookup] = (),
    source_name: str = "",
) -> int:
    """Outbox every event and queue every lookup again (a replay), claiming the keys not seen
    yet; return how many were new."""
    return await _claim_and_outbox(
        session, events, lookups, payload_id=payload_id, every=True, source_name=source_name
    )


async def _claim_and_outbox(
    session: AsyncSession,
    events: Sequence[NormalizedEvent],
    lookups: Sequence[Lookup],
    *,
    payload_id: uuid.UUID,
    every: bool,
    source_name: str = "",
) -> int:
    if not events and not lookups:
        return 0
    params = _claim_params(
        events, lookups, payload_id=payload_id, every=every, source_name=source_name
    )
    return int((await session.execute(_CLAIM_AND_OUTBOX, params)).scalar_one())


def _claim_params(
    events: Sequence[NormalizedEvent],
    lookups: Sequence[Lookup],
    *,
    payload_id: uuid.UUID,
    every: bool,
    source_name: str,
) -> dict[str, Any]:
    unique = {(event.source, event.dedupe_key): event for event in events}
    rows = outbox_rows((event.topic, event.encoded()) for event in unique.values())
    waiting = {(lookup.source, lookup.dedupe_key): lookup for lookup in lookups}
    none: list[None] = [None] * len(waiting)
    return {
        "sources": [source for source, _ in unique] + [source for source, _ in waiting],
        "dedupe_keys": [key for _, key in unique] + [key for _, key in waiting],
        "event_ids": [row["event_id"] for row in rows] + [w.event_id for w in waiting.values()],
        "topics": [row["topic"] for row in rows] + none,
        "kafka_keys": [row["key"] for row in rows] + none,
        "values": [row["value"] for row in rows] + none,
        "headers": [_json_text(row["headers"]) for row in rows] + none,
        "lookup_kinds": [None] * len(rows) + [w.kind for w in waiting.values()],
        "lookup_requests": [None] * len(rows) + [_json_text(w.request) for w in waiting.values()],
        "source_name": source_name,
        "payload_id": payload_id,
        "every": every,
    }


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """An archived delivery read back for a replay."""

    id: uuid.UUID
    source: str
    received_at: datetime
    body: bytes | None
    meta: dict[str, Any]


async def archived_page(
    session: AsyncSession,
    *,
    source: str,
    start: datetime,
    end: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[StoredPayload]:
    """Return archived deliveries of a source in [start, end), in arrival order, after a cursor."""
    query = (
        sa.select(
            raw_payloads.c.id,
            raw_payloads.c.source,
            raw_payloads.c.received_at,
            raw_payloads.c.body,
            raw_payloads.c.meta,
        )
        .where(
            raw_payloads.c.source == source,
            raw_payloads.c.received_at >= start,
            raw_payloads.c.received_at < end,
        )
        .order_by(raw_payloads.c.received_at, raw_payloads.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            sa.tuple_(raw_payloads.c.received_at, raw_payloads.c.id) > sa.tuple_(*after)
        )
    rows = (await session.execute(query)).all()
    return [StoredPayload(r.id, r.source, r.received_at, r.body, r.meta) for r in rows]


async def payload_chunks(
    session: AsyncSession, payload_id: uuid.UUID, *, per_query: int = 8
) -> AsyncIterator[bytes]:
    """Yield an upload's archived chunks in order, a few at a time."""
    last = -1
    while True:
        rows = (
            await session.execute(
                sa.select(raw_payload_chunks.c.seq, raw_payload_chunks.c.data)
                .where(
                    raw_payload_chunks.c.payload_id == payload_id, raw_payload_chunks.c.seq > last
                )
                .order_by(raw_payload_chunks.c.seq)
                .limit(per_query)
            )
        ).all()
        for row in rows:
            yield row.data
        if len(rows) < per_query:
            return
        last = rows[-1].seq


async def purge_payloads(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Delete up to `limit` archived deliveries received before `older_than`; return how many."""
    doomed = (
        sa.select(raw_payloads.c.id)
        .where(raw_payloads.c.received_at < older_than)
        .limit(limit)
        .scalar_subquery()
    )
    result = await session.execute(sa.delete(raw_payloads).where(raw_payloads.c.id.in_(doomed)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_dedupe_keys(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Delete up to `limit` dedupe keys first seen before `older_than`; return how many."""
    doomed = (
        sa.select(dedupe_keys.c.source, dedupe_keys.c.dedupe_key)
        .where(dedupe_keys.c.first_seen_at < older_than)
        .limit(limit)
    )
    result = await session.execute(
        sa.delete(dedupe_keys).where(
            sa.tuple_(dedupe_keys.c.source, dedupe_keys.c.dedupe_key).in_(doomed)
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
