"""The delivery worker: sends recorded deliveries, outside any consumer transaction.

Up to `batch_size` destinations are served at once, continuously: as soon as one is done, the
next round fills its place with the most urgent due destination not already in hand, so an urgent
delivery waits for a free place, never for a whole round of slower sends. For each destination
the worker takes the destination's lease in a
short transaction (FOR UPDATE SKIP LOCKED, so replicas share destinations and never send the
same delivery twice), asks the circuit breaker and the pacer what may go now, and commits. The
send happens with no transaction open, once the lease is seen to be still this worker's; a second
short transaction records the outcome, the attempt and the outgoing events, and releases the
lease. That transaction is retried while the database is away, until the lease would run out: a
message that is out must not be sent again for want of its record. A worker that dies mid-send
leaves a lease that expires, and the delivery is sent again: the one at-least-once window Slack
and SMTP leave open (neither takes an idempotency key).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters import destinations as dest
from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters.destinations import DestinationState
from tandem_alerts.adapters.outcomes import delivery_failure, publish_delivered, publish_failed
from tandem_alerts.adapters.repository import AttemptRecord, DeliveryRow
from tandem_alerts.adapters.senders import SendResult, judge, transport_missing
from tandem_alerts.domain.circuit import CircuitPolicy
from tandem_alerts.domain.compose import email_message, slack_message
from tandem_alerts.domain.delivery_policy import Action, FailureKind
from tandem_alerts.domain.pacing import Pace, PacingPolicy, QueuedAlert, pace_channel
from tandem_alerts.sending import SendingWorker
from tandem_alerts.settings import AlertsOptions
from tandem_shared.db import is_transient
from tandem_shared.events import AlertRequested, DeliveryChannel
from tandem_shared.telemetry import context_from, links_to, tracer
from tandem_shared.uow import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)
_tracer = tracer(__name__)

ATTEMPTS = Counter("tandem_alert_attempts_total", "Alert send attempts", ["channel", "outcome"])
RECORD_RETRIES = Counter(
    "tandem_alert_record_retries_total", "Outcomes of sends recorded again after a database error"
)
_DB_ERRORS = (sa_exc.DBAPIError, sa_exc.InterfaceError, sa_exc.DisconnectionError, OSError)


@dataclass(frozen=True)
class _Job:
    """What one claim sends: one delivery, or a coalesced burst to one Slack destination."""

    state: DestinationState
    deliveries: list[DeliveryRow]
    alerts: dict[str, repo.StoredAlert]
    lease_ends: float  # time.monotonic() when the lease runs out

    @property
    def coalesced(self) -> bool:
        return len(self.deliveries) > 1

    @property
    def trace_contexts(self) -> list[dict[str, str] | None]:
        """The stored trace contexts of the requests this job sends, in delivery order."""
        return [
            stored.trace_context if (stored := self.alerts.get(d.alert_id)) else None
            for d in self.deliveries
        ]


class DeliveryWorker(SendingWorker):
    """Sends due deliveries with pacing, a circuit breaker and retries; one of several replicas."""

    def __init__(self, **collaborators: Any) -> None:
        super().__init__(**collaborators)
        # The destinations being served now, each by its own task.
        self._serving: dict[tuple[DeliveryChannel, str], asyncio.Task[int]] = {}

    @staticmethod
    def polling(options: AlertsOptions) -> tuple[float, float]:
        """Poll every poll_seconds; stalled after ten missed rounds, a minute at least."""
        return options.poll_seconds, max(60.0, 10 * options.poll_seconds)

    @cached_property
    def _circuit(self) -> CircuitPolicy:
        return self._options.circuit_policy()

    @cached_property
    def _pacing(self) -> PacingPolicy:
        return self._options.pacing_policy()

    def more_waiting(self, done: int) -> bool:
        """Poll again at once while destinations were started (a finished one wakes us too)."""
        return done > 0

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            # Sends in hand finish and record their outcome: a message that is out is recorded.
            await asyncio.gather(*self._serving.values(), return_exceptions=True)

    async def tick(self) -> int:
        """Start serving due destinations in the free places; return how many were started."""
        serving, places = self._serving, self._options.batch_size
        if len(serving) >= places:
            await asyncio.wait(list(serving.values()), return_when=asyncio.FIRST_COMPLETED)
        self._raise_failures()
        free = places - len(serving)
        async with self._sessions() as session, session.begin():
            due = await repo.due_destinations(session, now=self._clock(), limit=free + len(serving))
            await self.refresh_people(session)
        started = [key for key in due if key not in serving][:free]
        for key in started:
            task = asyncio.create_task(self._serve(*key), name=f"deliver {key[0]}:{key[1]}")
            serving[key] = task
            task.add_done_callback(self._place_freed)
        return len(started)

    def _place_freed(self, _: asyncio.Task[int]) -> None:
        self.wake()

    def _raise_failures(self) -> None:
        """Forget finished destinations; raise what failed (run() retries database errors)."""
        failed: BaseException | None = None
        for key, task in list(self._serving.items()):
            if task.done():
                del self._serving[key]
                if not task.cancelled() and task.exception() is not None:
                    failed = failed or task.exception()
        if failed is not None:
            raise failed

    async def _serve(self, channel: DeliveryChannel, destination: str) -> int:
        job = await self._claim(channel, destination)
        if job is None or not await self._still_leased(job):
            return 0
        # Sent later, from rows: continue the first request's trace, link a burst's others.
        first, *others = job.trace_contexts
        with _tracer.start_as_current_span(
            "alert deliver",
            context=context_from(first),
            links=links_to(others),
            attributes={"tandem.channel": channel.value, "tandem.deliveries": len(job.deliveries)},
        ):
            started = time.perf_counter()
            result = await self._send(job)
            await self._record(job, result, duration_ms=int((time.perf_counter() - started) * 1000))
        return len(job.deliveries)

    async def _claim(self, channel: DeliveryChannel, destination: str) -> _Job | None:
        # Taken before the clock: the monotonic deadline may only end earlier than the lease.
        lease_ends = time.monotonic() + self._options.lease_seconds
        async with self._sessions() as session, session.begin():
            now = self._clock()
            until = now + timedelta(seconds=self._options.lease_seconds)
            state = await dest.lease_destination(
                session, channel, destination, now=now, until=until
            )
            if state is None:
                return None  # another worker serves this destination
            due = await repo.due_deliveries(
                session, channel, destination, now=now, limit=self._options.batch_size
            )
            chosen, state = await self._admit(session, state, due, now=now)
            if not chosen:
                await dest.save_destination(session, state, release=True)
                return None
            await dest.save_destination(session, state, release=False)
            stored = await repo.load_alerts(session, {d.alert_id for d in chosen})
        return _Job(state, chosen, stored, lease_ends)

    async def _still_leased(self, job: _Job) -> bool:
        """Check the lease right before sending: a worker stalled past it must not send too."""
        async with self._sessions() as session, session.begin():
            if await dest.lease_held(session, job.state, now=self._clock()):
                return True
        log.warning(
            "destination lease lost before sending; another sender has it",
            channel=job.state.channel.value,
            destination=job.state.destination,
            alerts=[d.alert_id for d in job.deliveries],
        )
        return False

    async def _admit(
        self,
        session: AsyncSession,
        state: DestinationState,
        due: list[DeliveryRow],
        *,
        now: datetime,
    ) -> tuple[list[DeliveryRow], DestinationState]:
        """Return what may be sent now; reschedule the rest to when it may."""
        if not due:
            return [], state
        ids = [d.id for d in due]
        admitted, circuit = state.circuit.admit(now=now, policy=self._circuit)
        if not admitted:
            retry_at = circuit.retry_at(policy=self._circuit) or now
            await repo.reschedule(session, ids, due_at=max(retry_at, now))
            return [], state
        if state.channel is not DeliveryChannel.SLACK:
            return due[:1], replace(state, circuit=circuit)
        queued = [QueuedAlert(alert_id=str(d.id), enqueued_at=d.created_at) for d in due]
        decision = pace_channel(state.pacer, queued, now=now, policy=self._pacing)
        if decision.pace is Pace.WAIT:
            # Nothing goes out, so a half-open circuit keeps its trial for the real send.
            await repo.reschedule(
                session, ids, due_at=now + timedelta(seconds=decision.wait_seconds)
            )
            return [], replace(state, pacer=decision.pacer)
        state = replace(state, circuit=circuit, pacer=decision.pacer)
        picked = set(decision.alert_ids)
        return [d for d in due if str(d.id) in picked], state

    async def _send(self, job: _Job) -> SendResult:
        first = job.deliveries[0]
        alerts = [job.alerts[d.alert_id].alert for d in job.deliveries if d.alert_id in job.alerts]
        if not alerts:
            raise LookupError(f"alert {first.alert_id} of delivery {first.id} is not stored")
        match first.channel:
            case DeliveryChannel.SLACK:
                return await self._send_slack(first, alerts)
            case DeliveryChannel.EMAIL:
                return await self._send_email(first, alerts[0])
            case DeliveryChannel.LOG:
                return self._senders.log.send(
                    first.destination, alerts, digest=False, covering_for=first.on_behalf_of
                )

    async def _send_slack(self, first: DeliveryRow, alerts: list[AlertRequested]) -> SendResult:
        if self._senders.slack is None:
            return transport_missing("slack")
        message = slack_message(
            alerts,
            directory=self._directory,
            on_behalf_of=first.on_behalf_of,
            recipient_id=first.recipient_id,
        )
        return await self._senders.slack.post(first.destination, message)

    async def _send_email(self, delivery: DeliveryRow, alert: AlertRequested) -> SendResult:
        if self._senders.email is None:
            return transport_missing("email")
        rendered = email_message(
            alert,
            recipient_id=delivery.recipient_id,
            directory=self._directory,
            on_behalf_of=delivery.on_behalf_of,
            links=self._senders.links,
            now=self._clock(),
        )
        return await self._senders.email.send(
            delivery.destination, rendered, message_key=delivery.idempotency_key
        )

    async def _record(self, job: _Job, result: SendResult, *, duration_ms: int) -> None:
        """Record the outcome, retrying while the database is away and the lease lasts."""
        delay = 0.1
        while True:
            try:
                await self._record_once(job, result, duration_ms=duration_ms)
                return
            except _DB_ERRORS as exc:
                left = job.lease_ends - time.monotonic()
                if not is_transient(exc) or left <= delay:
                    raise
                log.warning(
                    "recording a send failed; retrying",
                    channel=job.state.channel.value,
                    destination=job.state.destination,
                    sent=result.ok,
                    error=repr(exc),
                    lease_left=round(left, 1),
                )
            RECORD_RETRIES.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _record_once(self, job: _Job, result: SendResult, *, duration_ms: int) -> None:
        async with unit_of_work(self._sessions) as uow:
            now = self._clock()
            if result.ok:
                state = await self._record_sent(uow, job, result, now, duration_ms)
            else:
                state = await self._record_failure(uow, job, result, now, duration_ms)
            if not await dest.save_destination(uow.session, state, release=True):
                log.warning(
                    "destination lease lost while sending; its state is the new holder's",
                    channel=state.channel.value,
                    destination=state.destination,
                )

    async def _record_sent(
        self,
        uow: UnitOfWork,
        job: _Job,
        result: SendResult,
        now: datetime,
        duration_ms: int,
    ) -> DestinationState:
        ids = [d.id for d in job.deliveries]
        marked = await repo.mark_sent(
            uow.session,
            ids,
            sent_at=now,
            slack_ts=result.slack_ts,
            slack_channel=result.slack_channel,
            coalesced=job.coalesced,
        )
        if repeats := [d.alert_id for d in job.deliveries if d.id not in marked]:
            # Recorded already: by another sender that took over an expired lease (this send
            # was a repeat), or by our own commit whose answer the database never sent.
            log.warning(
                "alert already recorded as sent or failed; this send may be a repeat",
                channel=job.state.channel.value,
                destination=job.state.destination,
                alerts=repeats,
            )
        fresh = [d for d in job.deliveries if d.id in marked]
        records = [
            AttemptRecord(d.id, d.attempts + 1, "sent", None, duration_ms, now, job.coalesced)
            for d in fresh
        ]
        await repo.log_attempts(uow.session, records)
        for delivery in fresh:
            publish_delivered(
                uow,
                delivery,
                job.alerts.get(delivery.alert_id),
                attempts=delivery.attempts + 1,
                coalesced=job.coalesced,
                now=now,
            )
        ATTEMPTS.labels(job.state.channel.value, "sent").inc(len(ids))
        log.info(
            "alert delivered",
            channel=job.state.channel.value,
            destination=job.state.destination,
            alerts=[d.alert_id for d in job.deliveries],
            coalesced=job.coalesced,
        )
        return replace(job.state, circuit=job.state.circuit.on_success())

    async def _record_failure(
        self,
        uow: UnitOfWork,
        job: _Job,
        result: SendResult,
        now: datetime,
        duration_ms: int,
    ) -> DestinationState:
        assert result.failure is not None
        kind, _ = judge(result.failure, attempts=1, policy=self._retry)
        state = self._after_failure(job.state, kind, result, now)
        # A retry never comes before the breaker lets a trial through.
        not_before = state.circuit.retry_at(policy=self._circuit) or now
        first = await repo.first_failures(uow.session, [d.id for d in job.deliveries])
        records: list[AttemptRecord] = []
        for delivery in job.deliveries:
            attempt = delivery.attempts + 1
            age = (now - first.get(delivery.id, now)).total_seconds()
            _, decision = judge(
                result.failure, attempts=attempt, age_seconds=age, policy=self._retry
            )
            retrying = decision.action is Action.RETRY
            retry_at = (
                max(now + timedelta(seconds=decision.delay_seconds), not_before)
                if retrying
                else None
            )
            if not await repo.mark_failed_attempt(
                uow.session, [delivery.id], error=decision.reason, retry_at=retry_at
            ):
                continue  # another sender has recorded it meanwhile; its outcome stands
            outcome = "retry" if retrying else "failed"
            records.append(
                AttemptRecord(
                    delivery.id, attempt, outcome, decision.reason, duration_ms, now, job.coalesced
                )
            )
            ATTEMPTS.labels(state.channel.value, outcome).inc()
            if not retrying:
                failure = delivery_failure(
                    delivery,
                    error=decision.reason,
                    attempts=attempt,
                    permanent=decision.permanent,
                    now=now,
                )
                stored = job.alerts.get(delivery.alert_id)
                await publish_failed(
                    uow,
                    idempotency_key=delivery.idempotency_key,
                    failure=failure,
                    stored=stored,
                )
            log.warning(
                "alert send failed",
                channel=state.channel.value,
                destination=state.destination,
                alert_id=delivery.alert_id,
                attempt=attempt,
                outcome=outcome,
                reason=decision.reason,
                retry_at=retry_at.isoformat() if retry_at else None,
            )
        await repo.log_attempts(uow.session, records)
        return state

    def _after_failure(
        self, state: DestinationState, kind: FailureKind, result: SendResult, now: datetime
    ) -> DestinationState:
        """Feed a failure to the breaker (transient only) or the pacer (rate limits)."""
        if kind is FailureKind.TRANSIENT:
            return replace(state, circuit=state.circuit.on_failure(now=now, policy=self._circuit))
        if kind is FailureKind.RATE_LIMITED:
            wait = getattr(result.failure, "retry_after", None)
            if wait is None:
                wait = self._retry.default_rate_limit_wait
            return replace(state, pacer=state.pacer.throttled(now=now, retry_after=wait))
        return state
