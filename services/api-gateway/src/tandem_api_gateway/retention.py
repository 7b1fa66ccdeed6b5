"""Retention of the raw rows that grow without bound: timeline entries and alert deliveries.

Past `keep_timeline_days` (counted back from the newest entry, or from now if that is
earlier), timeline entries go; sales activity and marketing engagement are
first rolled up into `activity_days` (per account, team and UTC day: the first and last
activity), which is what the coverage metric needs of them. Past `keep_deliveries_days`,
deliveries go, counted first per day, channel and status in `delivery_days`. Handoffs, alerts,
deals and accounts are kept: they are the metrics' facts and grow by the year's work, not by
every click. Each round moves at most `batch` rows per table in one transaction, so a first run
over years of data never holds long locks; a row arriving late (an old event redelivered out
of order) is rolled up by the next round, and merging a day twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.settings import GatewayOptions
from tandem_shared.db import Statement, fetch
from tandem_shared.envelope import utcnow
from tandem_shared.worker import PollingWorker

log = structlog.get_logger(__name__)

# Ages count back from the newest row, or from now if that is earlier (a vendor's clock in the
# future must not age everything): the read models keep event time only, so retention gives
# the same rows on a replay of old events, and a test's fixed clock, as it did live.
_TIMELINE = Statement.of(
    "WITH gone AS (DELETE FROM timeline WHERE (kind, entry_id) IN ("
    "  SELECT kind, entry_id FROM timeline WHERE at < least(:now, (SELECT max(at) FROM timeline))"
    "    - make_interval(days => :days) ORDER BY at LIMIT :batch)"
    "  RETURNING account_key, kind, at), "
    "rolled AS (INSERT INTO activity_days AS d (account_key, team, day, first_at, last_at) "
    "  SELECT account_key, CASE kind WHEN 'sales_activity' THEN 'sales' ELSE 'marketing' END, "
    "    (at AT TIME ZONE 'UTC')::date, min(at), max(at) "
    "  FROM gone WHERE kind IN ('sales_activity', 'engagement') GROUP BY 1, 2, 3 "
    "  ON CONFLICT (account_key, team, day) DO UPDATE SET "
    "    first_at = least(d.first_at, excluded.first_at), "
    "    last_at = greatest(d.last_at, excluded.last_at)) "
    "SELECT count(*) FROM gone"
)
_DELIVERIES = Statement.of(
    "WITH gone AS (DELETE FROM alert_deliveries WHERE (alert_id, recipient_id, channel) IN ("
    "  SELECT alert_id, recipient_id, channel FROM alert_deliveries "
    "  WHERE at < least(:now, (SELECT max(at) FROM alert_deliveries)) "
    "    - make_interval(days => :days) ORDER BY at LIMIT :batch) "
    "  RETURNING at, channel, status, attempts), "
    "rolled AS (INSERT INTO delivery_days AS d (day, channel, status, deliveries, attempts) "
    "  SELECT (at AT TIME ZONE 'UTC')::date, channel, status, count(*), sum(attempts) "
    "  FROM gone GROUP BY 1, 2, 3 "
    "  ON CONFLICT (day, channel, status) DO UPDATE SET "
    "    deliveries = d.deliveries + excluded.deliveries, "
    "    attempts = d.attempts + excluded.attempts) "
    "SELECT count(*) FROM gone"
)


@dataclass(frozen=True, slots=True)
class Removed:
    """Raw rows one round removed (after rolling them up)."""

    timeline: int = 0
    deliveries: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(self.timeline + other.timeline, self.deliveries + other.deliveries)

    @property
    def total(self) -> int:
        return self.timeline + self.deliveries


async def retain_once(
    session: AsyncSession, options: GatewayOptions, *, now: datetime, batch: int
) -> Removed:
    """Roll up and remove up to `batch` rows past retention from each table (one transaction)."""
    removed = Removed()
    for days, statement, field in (
        (options.keep_timeline_days, _TIMELINE, "timeline"),
        (options.keep_deliveries_days, _DELIVERIES, "deliveries"),
    ):
        if days > 0:  # 0 keeps every row
            params = {"now": now, "days": days, "batch": batch}
            [(count,)] = await fetch(session, statement, params)
            removed += Removed(**{field: count})
    return removed


async def retain(
    sessions: async_sessionmaker[AsyncSession], options: GatewayOptions, *, now: datetime
) -> Removed:
    """Apply retention until no row past it is left; return how many rows went."""
    removed = Removed()
    while True:
        async with sessions() as session, session.begin():
            done = await retain_once(session, options, now=now, batch=options.retention_batch)
        removed += done
        if done.timeline < options.retention_batch and done.deliveries < options.retention_batch:
            return removed


class RetentionWorker(PollingWorker):
    """Applies retention every `retention_interval_seconds`, a batch per table and round."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], options: GatewayOptions) -> None:
        super().__init__(interval=options.retention_interval_seconds, stall_seconds=None)
        self._sessions = sessions
        self._options = options

    async def tick(self) -> int:
        """Roll up and remove one batch per table."""
        options = self._options
        async with self._sessions() as session, session.begin():
            done = await retain_once(session, options, now=utcnow(), batch=options.retention_batch)
        if done.total:
            log.info("retention applied", timeline=done.timeline, deliveries=done.deliveries)
        return done.total

    def more_waiting(self, done: int) -> bool:
        """A full batch suggests more rows past retention: go on without a pause."""
        return done >= self._options.retention_batch
