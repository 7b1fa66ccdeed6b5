"""Replay of archived deliveries, and the retention purge (a command and a worker)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_ingest.adapters import repository
from tandem_ingest.domain.bombora import Item
from tandem_ingest.domain.deliveries import normalize, surge_reader
from tandem_ingest.domain.errors import MalformedBodyError, SchemaError
from tandem_ingest.domain.normalized import NormalizedEvent
from tandem_ingest.domain.sources import Source
from tandem_ingest.settings import IngestOptions
from tandem_shared.uow import unit_of_work
from tandem_shared.worker import PollingWorker

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ReplayCounts:
    """What a replay did."""

    payloads: int = 0
    events: int = 0
    republished: int = 0  # outbox rows written: every event, with its original id
    first_seen: int = 0  # events whose dedupe key did not exist before (e.g. rejected then fixed)
    element_errors: int = 0
    unusable_payloads: int = 0


async def replay(
    sessions: async_sessionmaker[AsyncSession],
    *,
    source: Source,
    start: datetime,
    end: datetime,
    page_size: int,
    batch_events: int = 1000,
) -> ReplayCounts:
    """Re-normalize a source's archived deliveries in [start, end) and outbox their events again."""
    counts = ReplayCounts()
    cursor: tuple[datetime, uuid.UUID] | None = None
    while True:
        # The outbox rows go in with the dedupe claims (repository.publish_again), not emitted.
        async with unit_of_work(sessions) as uow:
            page = await repository.archived_page(
                uow.session, source=source.name, start=start, end=end, after=cursor, limit=page_size
            )
            for payload in page:
                await _replay_payload(uow.session, source, payload, counts, batch_events)
        if len(page) < page_size:
            return counts
        cursor = (page[-1].received_at, page[-1].id)


async def _replay_payload(
    session: AsyncSession,
    source: Source,
    payload: repository.StoredPayload,
    counts: ReplayCounts,
    batch_events: int,
) -> None:
    counts.payloads += 1
    try:
        if payload.body is not None:
            result = normalize(source, payload.body, received_at=payload.received_at)
            counts.element_errors += len(result.errors)
            await _republish(session, list(result.events), payload.id, counts)
            if result.lookups:  # fetched again: the CRM record may have changed since
                counts.first_seen += await repository.publish_again(
                    session,
                    (),
                    payload_id=payload.id,
                    lookups=result.lookups,
                    source_name=source.name,
                )
                counts.events += len(result.lookups)
        else:
            await _replay_upload(session, source, payload, counts, batch_events)
    except (MalformedBodyError, SchemaError) as exc:
        counts.unusable_payloads += 1
        log.warning("archived payload still unusable", payload_id=str(payload.id), error=str(exc))


async def _replay_upload(
    session: AsyncSession,
    source: Source,
    payload: repository.StoredPayload,
    counts: ReplayCounts,
    batch_events: int,
) -> None:
    observed_on = date.fromisoformat(str(payload.meta["observed_on"]))
    reader = surge_reader(source, observed_on=observed_on)
    pending: list[NormalizedEvent] = []
    async for chunk in repository.payload_chunks(session, payload.id):
        pending.extend(_events(reader.feed(chunk), counts))
        if len(pending) >= batch_events:
            await _republish(session, pending, payload.id, counts)
            pending = []
    pending.extend(_events(reader.close(), counts))
    await _republish(session, pending, payload.id, counts)


def _events(items: Sequence[Item], counts: ReplayCounts) -> list[NormalizedEvent]:
    events = [item for item in items if isinstance(item, NormalizedEvent)]
    counts.element_errors += len(items) - len(events)
    return events


async def _republish(
    session: AsyncSession,
    events: list[NormalizedEvent],
    payload_id: uuid.UUID,
    counts: ReplayCounts,
) -> None:
    counts.events += len(events)
    counts.first_seen += await repository.publish_again(session, events, payload_id=payload_id)
    counts.republished += len({(e.source, e.dedupe_key) for e in events})


@dataclass(slots=True)
class PurgeCounts:
    """What a purge deleted."""

    payloads: int = 0
    dedupe_keys: int = 0


async def purge(
    sessions: async_sessionmaker[AsyncSession], *, older_than: datetime, batch_rows: int
) -> PurgeCounts:
    """Delete archived payloads and dedupe keys older than the cutoff, in short transactions."""
    counts = PurgeCounts()
    while True:
        async with sessions() as session, session.begin():
            deleted = await repository.purge_payloads(
                session, older_than=older_than, limit=batch_rows
            )
        counts.payloads += deleted
        if deleted < batch_rows:
            break
    while True:
        async with sessions() as session, session.begin():
            deleted = await repository.purge_dedupe_keys(
                session, older_than=older_than, limit=batch_rows
            )
        counts.dedupe_keys += deleted
        if deleted < batch_rows:
            return counts


class RetentionWorker(PollingWorker):
    """Purges raw payloads past the retention period, periodically, inside the service."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        options: IngestOptions,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._options = options
        self._clock = clock
        # Retention is not urgent: rows a failed round leaves are deleted by the next one.
        super().__init__(interval=options.purge_every_seconds, stall_seconds=None)

    async def tick(self) -> int:
        """Purge what is past retention; return how many payloads went."""
        cutoff = self._clock() - timedelta(days=self._options.raw_retention_days)
        counts = await purge(
            self._sessions, older_than=cutoff, batch_rows=self._options.purge_batch_rows
        )
        if counts.payloads or counts.dedupe_keys:
            log.info("raw payloads purged", payloads=counts.payloads, keys=counts.dedupe_keys)
        return counts.payloads
