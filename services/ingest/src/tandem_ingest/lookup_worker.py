"""The worker that fills thin webhooks in: it reads the records lookups need from HubSpot's CRM
API and publishes their events through the outbox, in the transaction that deletes the lookups.

A HubSpot outage, a refusal or a rate limit puts the round's lookups off (durably, in
PostgreSQL) and nothing is lost: they are fetched again when due. Event ids were fixed when the
webhook arrived, so a lookup fetched twice (a lease that ran out) publishes the same event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_ingest.adapters import lookup_store
from tandem_ingest.adapters.hubspot_api import HubSpotApi, HubSpotApiError
from tandem_ingest.adapters.lookup_store import ClaimedLookup
from tandem_ingest.domain.hubspot import HubSpotConfig
from tandem_ingest.domain.hubspot_records import (
    ACTIVITY_PROPERTIES,
    ACTIVITY_TYPES,
    COMPANY,
    COMPANY_PROPERTIES,
    CONTACT,
    CONTACT_PROPERTIES,
    Fetched,
    association_reads,
    build_event,
    company_reads,
    contact_reads,
    first_reads,
)
from tandem_ingest.domain.normalized import Lookup, NormalizedEvent
from tandem_ingest.domain.sources import Source
from tandem_ingest.settings import HubSpotApiSettings
from tandem_shared.outbox import outbox_rows
from tandem_shared.uow import unit_of_work
from tandem_shared.worker import PollingWorker

log = structlog.get_logger(__name__)

LOOKUPS = Counter(
    "tandem_ingest_lookups_total",
    "Lookups handled, by outcome (published, gone, put_off, rate_limited, invalid)",
    ["outcome"],
)


async def fetch_records(
    api: HubSpotApi, lookups: Iterable[Lookup], *, extra_properties: Iterable[str] = ()
) -> Fetched:
    """Read what the lookups need in three rounds of batch reads (see hubspot_records)."""
    wanted = list(lookups)
    extra = set(extra_properties)
    properties = {
        CONTACT: {*CONTACT_PROPERTIES, *extra},
        COMPANY: {*COMPANY_PROPERTIES, *extra},
        **{type_id: set(ACTIVITY_PROPERTIES) for type_id in ACTIVITY_TYPES},
    }
    fetched = Fetched()

    async def read(type_id: str, ids: set[str]) -> None:
        if ids:
            found = await api.read(type_id, ids, properties[type_id])
            fetched.records.update({(type_id, i): p for i, p in found.items()})

    for type_id, ids in first_reads(wanted).items():
        await read(type_id, ids)
    for (from_type, to_type), ids in association_reads(wanted).items():
        for from_id, to_ids in (await api.associations(from_type, to_type, ids)).items():
            fetched.associations[(from_type, from_id, to_type)] = to_ids
    await read(CONTACT, contact_reads(wanted, fetched))
    await read(COMPANY, company_reads(wanted, fetched))
    return fetched


class LookupWorker(PollingWorker):
    """Claims due lookups, fetches their records, and publishes or puts them off."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        api: HubSpotApi,
        sources: Mapping[str, Source],
        options: HubSpotApiSettings,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(interval=options.poll_seconds, stall_seconds=None)
        self._sessions = sessions
        self._api = api
        self._sources = sources
        self._options = options
        self._clock = clock

    def more_waiting(self, done: int) -> bool:
        return done >= self._options.batch_size

    def _property_map(self, source_name: str) -> Mapping[str, str]:
        source = self._sources.get(source_name)
        config = source.config if source is not None else None
        return (config if isinstance(config, HubSpotConfig) else HubSpotConfig()).property_map

    async def tick(self) -> int:
        """Do one round: claim, fetch, then publish or put off; return how many were published."""
        now = self._clock()
        lease = timedelta(seconds=self._options.lease_seconds)
        async with unit_of_work(self._sessions) as uow:
            claimed = await lookup_store.claim_due(
                uow.session, now=now, lease=lease, limit=self._options.batch_size
            )
        if not claimed:
            return 0
        maps = {c.source_name: self._property_map(c.source_name) for c in claimed}
        extra = {name for m in maps.values() for name in m}
        try:
            fetched = await fetch_records(
                self._api, [c.lookup for c in claimed], extra_properties=extra
            )
        except HubSpotApiError as exc:
            await self._put_off(claimed, exc)
            return 0
        events: list[NormalizedEvent] = []
        done: list[str] = []
        async with unit_of_work(self._sessions) as uow:
            for item in claimed:
                try:
                    event = build_event(item.lookup, fetched, property_map=maps[item.source_name])
                except (KeyError, TypeError, ValueError) as exc:
                    # A record Tandem cannot read stays queued with its reason, not dropped.
                    LOOKUPS.labels("invalid").inc()
                    log.error("lookup unusable", event_id=item.event_id, error=repr(exc))
                    await lookup_store.put_off(
                        uow.session, [item.event_id], due_at=now + self._max_delay, error=repr(exc)
                    )
                    continue
                done.append(item.event_id)
                if event is None:
                    LOOKUPS.labels("gone").inc()
                    log.info("record gone from the CRM before its lookup", event_id=item.event_id)
                else:
                    events.append(event)
            uow.emit_rows(outbox_rows((e.topic, e.encoded()) for e in events))
            await lookup_store.finish(uow.session, done)
        LOOKUPS.labels("published").inc(len(events))
        return len(claimed)

    @property
    def _max_delay(self) -> timedelta:
        return timedelta(seconds=self._options.retry_max_seconds)

    async def _put_off(self, claimed: list[ClaimedLookup], exc: HubSpotApiError) -> None:
        options = self._options
        if exc.rate_limited:
            seconds = exc.retry_after if exc.retry_after is not None else options.retry_max_seconds
            outcome = "rate_limited"
        else:
            attempts = max(c.attempts for c in claimed)
            seconds = options.retry_base_seconds * 2 ** min(attempts - 1, 30)
            outcome = "put_off"
        due_at = self._clock() + min(timedelta(seconds=seconds), self._max_delay)
        async with unit_of_work(self._sessions) as uow:
            await lookup_store.put_off(
                uow.session,
                [c.event_id for c in claimed],
                due_at=due_at,
                error=str(exc),
                count_attempt=not exc.rate_limited,
            )
        LOOKUPS.labels(outcome).inc(len(claimed))
        log.warning(
            "CRM API lookups put off",
            lookups=len(claimed),
            until=due_at.isoformat(),
            error=str(exc),
        )
