"""Every query of the ingest service: archive, dedupe keys, outbox rows, replay reads, purges."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_ingest.adapters.tables import dedupe_keys, raw_payload_chunks, raw_payloads
from tandem_ingest.domain.normalized import NormalizedEvent
from tandem_shared.outbox import add_to_outbox, outbox_row


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


async def publish_new(
    session: AsyncSession, events: Sequence[NormalizedEvent], *, payload_id: uuid.UUID
) -> list[NormalizedEvent]:
    """Claim the events' dedupe keys; outbox only those claimed now and return them."""
    unique = {(event.source, event.dedupe_key): event for event in events}
    if not unique:
        return []
    claimed = await _claim(session, unique, payload_id=payload_id)
    fresh = [event for key, event in unique.items() if key in claimed]
    await add_to_outbox(session, [outbox_row(e.topic, e.to_envelope()) for e in fresh])
    return fresh


async def publish_again(
    session: AsyncSession, events: Sequence[NormalizedEvent], *, payload_id: uuid.UUID
) -> int:
    """Outbox every event (a replay), claiming the keys not seen yet; return how many were new."""
    unique = {(event.source, event.dedupe_key): event for event in events}
    if not unique:
        return 0
    claimed = await _claim(session, unique, payload_id=payload_id)
    await add_to_outbox(session, [outbox_row(e.topic, e.to_envelope()) for e in unique.values()])
    return len(claimed)


async def _claim(
    session: AsyncSession,
    unique: dict[tuple[str, str], NormalizedEvent],
    *,
    payload_id: uuid.UUID,
) -> set[tuple[str, str]]:
    # Sorted keys give concurrent deliveries one lock order, so overlapping batches never deadlock;
    # a concurrent duplicate waits for the first transaction and then finds the key taken.
    rows = [
        {"source": s, "dedupe_key": k, "event_id": e.event_id, "payload_id": payload_id}
        for (s, k), e in sorted(unique.items())
    ]
    result = await session.execute(
        insert(dedupe_keys)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
        .returning(dedupe_keys.c.source, dedupe_keys.c.dedupe_key)
    )
    return {(row.source, row.dedupe_key) for row in result}


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
