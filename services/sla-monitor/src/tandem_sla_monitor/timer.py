"""The timer: fires due clocks straight from PostgreSQL, once each, across restarts and replicas.

Each tick claims due clocks with FOR UPDATE SKIP LOCKED, fires them with the pure core and saves
the new state with its outgoing events in the same transaction. A crash before the commit leaves
the clocks due, so the next tick (of this or another replica) fires them; a commit makes the new
`next_due_at` and the outbox rows durable together, so nothing fires twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from opentelemetry.trace import Span, StatusCode
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_shared.availability import LiveDirectory
from tandem_shared.directory import Directory
from tandem_shared.envelope import utcnow
from tandem_shared.telemetry import context_from, tracer
from tandem_shared.uow import UnitOfWork, unit_of_work
from tandem_shared.worker import PollingWorker
from tandem_sla_monitor.adapters import repository as repo
from tandem_sla_monitor.adapters.repository import DueClock
from tandem_sla_monitor.domain.clock import SlaClock, fire, next_firing
from tandem_sla_monitor.domain.schedule import span_of
from tandem_sla_monitor.publishing import emission_rows
from tandem_sla_monitor.settings import SlaSettings

log = structlog.get_logger(__name__)
_tracer = tracer(__name__)

FIRED = Counter("tandem_sla_events_fired_total", "Timed SLA events fired", ["type"])
LATENESS = Histogram(
    "tandem_sla_fire_lateness_seconds",
    "How long after it was due a clock fired",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 3600),
)
CLOCK_ERRORS = Counter("tandem_sla_clock_errors_total", "Clocks whose firing failed")

# A clock whose firing raises is retried this much later, so it cannot block the others.
RETRY_FAILED_CLOCK_AFTER = timedelta(minutes=1)


class ClockTimer(PollingWorker):
    """A worker that fires due clocks every `tick_seconds`."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        directory: Directory | LiveDirectory,
        settings: SlaSettings,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        # A live directory is read once per batch: escalations follow run-time availability.
        self._directory = directory
        self._settings = settings
        self._now = now
        self._last_purge: float | None = None
        super().__init__(interval=settings.tick_seconds, stall_seconds=settings.stall_seconds)

    def more_waiting(self, done: int) -> bool:
        """A full batch is followed at once by the next one."""
        return done >= self._settings.batch_size

    async def after_tick(self) -> None:
        """Purge old early activities now and then."""
        await self._purge_if_due()

    async def tick(self) -> int:
        """Fire the clocks due now in one transaction; return how many were claimed."""
        now = self._now()
        async with unit_of_work(self._sessions) as uow:
            due = await repo.claim_due_clocks(uow.session, now=now, limit=self._settings.batch_size)
            if due:
                people = await self._people(uow.session)
            for claimed in due:
                await self._fire_one(uow, claimed, now, people)
        return len(due)

    async def _people(self, session: AsyncSession) -> Directory:
        live = self._directory
        return await live.current(session) if isinstance(live, LiveDirectory) else live

    async def _fire_one(
        self, uow: UnitOfWork, due: DueClock, now: datetime, people: Directory
    ) -> None:
        # Fired later, from a row: continue the trace of the decision that started the clock,
        # so the outbox rows written in this span carry it on to alerts and Slack.
        clock = due.clock
        name, attributes = span_of(next_firing(clock))
        with _tracer.start_as_current_span(
            name,
            context=context_from(due.trace_context),
            attributes={"tandem.handoff_id": clock.handoff_id, **attributes},
        ) as span:
            await self._fire_in_span(uow, clock, now, span, people)

    async def _fire_in_span(
        self, uow: UnitOfWork, clock: SlaClock, now: datetime, span: Span, people: Directory
    ) -> None:
        due_at = clock.next_due_at
        try:
            fired, emitted = fire(clock, now, people)
        except ValueError as exc:
            # A clock the core cannot fire (e.g. a calendar with no working time left).
            CLOCK_ERRORS.inc()
            span.set_status(StatusCode.ERROR, str(exc))
            log.error("clock failed to fire", handoff_id=clock.handoff_id, error=repr(exc))
            await repo.postpone_clock(
                uow.session, clock.handoff_id, to=now + RETRY_FAILED_CLOCK_AFTER
            )
            return
        span.set_attribute("tandem.sla.events", [e.event_type.value for e in emitted])
        await repo.update_clock(uow.session, fired)
        # Made in this span, so the rows carry its trace context.
        uow.emit_rows(emission_rows(emitted))
        if due_at is not None:
            LATENESS.observe(max(0.0, (now - due_at).total_seconds()))
        for emission in emitted:
            FIRED.labels(emission.event_type.value).inc()

    async def _purge_if_due(self) -> None:
        """Drop early activities past their retention, every `purge_every_seconds`."""
        moment = time.monotonic()
        if self._last_purge is not None and (
            moment - self._last_purge < self._settings.purge_every_seconds
        ):
            return
        self._last_purge = moment
        keep = timedelta(hours=self._settings.early_activity_retention_hours)
        async with self._sessions() as session, session.begin():
            purged = await repo.purge_early_activities(session, stored_before=self._now() - keep)
        if purged:
            log.info("early activities purged", count=purged)
