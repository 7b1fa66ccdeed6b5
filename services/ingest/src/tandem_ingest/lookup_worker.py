"""The worker that fills thin webhooks in: it reads what lookups need from the vendors' APIs
(HubSpot's CRM API, Outreach's API) and publishes their events through the outbox, in the
transaction that deletes the lookups.

An outage, a refusal or a rate limit puts the round's lookups of that vendor off (durably, in
PostgreSQL) and nothing is lost: they are fetched again when due. Event ids were fixed when the
webhook arrived, so a lookup fetched twice (a lease that ran out) publishes the same event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from itertools import groupby

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_ingest.adapters import lookup_store
from tandem_ingest.adapters.api_errors import ApiError
from tandem_ingest.adapters.lookup_store import ClaimedLookup
from tandem_ingest.domain.normalized import NormalizedEvent
from tandem_ingest.resolvers import Resolver, Unusable
from tandem_ingest.settings import LookupSettings
from tandem_shared.outbox import outbox_rows
from tandem_shared.uow import unit_of_work
from tandem_shared.worker import PollingWorker

log = structlog.get_logger(__name__)

LOOKUPS = Counter(
    "tandem_ingest_lookups_total",
    "Lookups handled, by vendor and outcome (published, gone, put_off, rate_limited, unusable)",
    ["vendor", "outcome"],
)


def vendor_of(item: ClaimedLookup) -> str:
    """Return the vendor a lookup is for: the prefix of its kind."""
    return item.lookup.kind.partition(".")[0]


class LookupWorker(PollingWorker):
    """Claims due lookups, has each vendor's resolver fill them in, publishes or puts them off."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        resolvers: Mapping[str, Resolver],
        options: LookupSettings,
    ) -> None:
        super().__init__(interval=options.poll_seconds, stall_seconds=None)
        self._sessions = sessions
        self._resolvers = resolvers
        self._options = options

    def more_waiting(self, done: int) -> bool:
        return done >= self._options.batch_size

    async def close(self) -> None:
        """Close the vendors' API clients."""
        for resolver in self._resolvers.values():
            await resolver.close()

    async def tick(self) -> int:
        """Do one round: claim, fetch, then publish or put off; return how many were done."""
        lease = timedelta(seconds=self._options.lease_seconds)
        async with unit_of_work(self._sessions) as uow:
            claimed = await lookup_store.claim_due(
                uow.session, lease=lease, limit=self._options.batch_size
            )
        done = 0
        for vendor, group in groupby(sorted(claimed, key=vendor_of), key=vendor_of):
            done += await self._resolve(vendor, list(group))
        return done  # lookups put off do not count: a rate-limited round pauses

    async def _resolve(self, vendor: str, claimed: list[ClaimedLookup]) -> int:
        resolver = self._resolvers.get(vendor)
        if resolver is None:  # queued while a token was set, which is gone now
            error = ApiError(f"no {vendor} API configured (set its access token)")
            await self._put_off(vendor, claimed, error)
            return 0
        try:
            resolved = await resolver.resolve(claimed)
        except ApiError as exc:
            if exc.refused_request and len(claimed) > 1:
                # One lookup may make the whole batch refused: each alone, so it holds up no other.
                return sum([await self._resolve(vendor, [item]) for item in claimed])
            await self._put_off(vendor, claimed, exc)
            return 0
        except (KeyError, TypeError, ValueError) as exc:
            # An answer of an unexpected shape: the API changed or misbehaves. Retried like an
            # outage rather than crashing the worker (mapping errors are per lookup, below).
            await self._put_off(vendor, claimed, ApiError(f"unexpected answer: {exc!r}"))
            return 0
        events: list[NormalizedEvent] = []
        done: list[str] = []
        async with unit_of_work(self._sessions) as uow:
            for item in claimed:
                outcome = resolved.get(item.event_id)
                if isinstance(outcome, Unusable):
                    # A record Tandem cannot read stays queued with its reason, not dropped.
                    LOOKUPS.labels(vendor, "unusable").inc()
                    log.error("lookup unusable", event_id=item.event_id, error=outcome.reason)
                    await lookup_store.put_off(
                        uow.session, [item.event_id], delay=self._max_delay, error=outcome.reason
                    )
                    continue
                done.append(item.event_id)
                if outcome is None:
                    LOOKUPS.labels(vendor, "gone").inc()
                    log.info("record gone before its lookup", vendor=vendor, event_id=item.event_id)
                else:
                    events.append(outcome)
            uow.emit_rows(outbox_rows((e.topic, e.encoded()) for e in events))
            await lookup_store.finish(uow.session, done)
        LOOKUPS.labels(vendor, "published").inc(len(events))
        return len(done)

    @property
    def _max_delay(self) -> timedelta:
        return timedelta(seconds=self._options.retry_max_seconds)

    async def _put_off(self, vendor: str, claimed: list[ClaimedLookup], exc: ApiError) -> None:
        options = self._options
        if exc.rate_limited:
            seconds = exc.retry_after if exc.retry_after is not None else options.retry_max_seconds
            outcome = "rate_limited"
        else:
            attempts = max(c.attempts for c in claimed)
            seconds = options.retry_base_seconds * 2 ** min(attempts - 1, 30)
            outcome = "put_off"
        delay = min(timedelta(seconds=seconds), self._max_delay)
        async with unit_of_work(self._sessions) as uow:
            await lookup_store.put_off(
                uow.session,
                [c.event_id for c in claimed],
                delay=delay,
                error=str(exc),
                count_attempt=not exc.rate_limited,
            )
        LOOKUPS.labels(vendor, outcome).inc(len(claimed))
        log.warning(
            "lookups put off", vendor=vendor, lookups=len(claimed), delay=delay, error=str(exc)
        )
