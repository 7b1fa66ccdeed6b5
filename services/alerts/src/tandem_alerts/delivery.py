"""The delivery worker: sends recorded deliveries, outside any consumer transaction.

A tick finds destinations with due deliveries. For each it takes the destination's lease in a
short transaction (FOR UPDATE SKIP LOCKED, so replicas share destinations and never send the
same delivery twice), asks the circuit breaker and the pacer what may go now, and commits. The
send happens with no transaction open; a second short transaction records the outcome, the
attempt and the outgoing events, and releases the lease. A worker that dies mid-send leaves a
lease that expires, and the delivery is sent again: the one at-least-once window Slack and SMTP
leave open (neither takes an idempotency key).
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters.email import EmailSender
from tandem_alerts.adapters.log_sink import LogSink
from tandem_alerts.adapters.outcomes import delivery_failure, publish_delivered, publish_failed
from tandem_alerts.adapters.repository import AttemptRecord, DeliveryRow, DestinationState
from tandem_alerts.adapters.senders import SendResult, judge, transport_missing
from tandem_alerts.adapters.slack import SlackSender
from tandem_alerts.domain.circuit import CircuitPolicy
from tandem_alerts.domain.compose import email_message, slack_message
from tandem_alerts.domain.delivery_policy import Action, FailureKind
from tandem_alerts.domain.pacing import Pace, PacingPolicy, QueuedAlert, pace_channel
from tandem_alerts.settings import AlertsOptions
from tandem_shared.directory import Directory
from tandem_shared.events import AlertRequested, DeliveryChannel
from tandem_shared.telemetry import context_from, links_to, tracer
from tandem_shared.uow import UnitOfWork, unit_of_work
from tandem_shared.worker import PollingWorker

log = structlog.get_logger(__name__)
_tracer = tracer(__name__)

Clock = Callable[[], datetime]
Sessions = async_sessionmaker[AsyncSession]

ATTEMPTS = Counter("tandem_alert_attempts_total", "Alert send attempts", ["channel", "outcome"])


@dataclass(frozen=True)
class Senders:
    """The transports; Slack and email are None when not configured."""

    slack: SlackSender | None
    email: EmailSender | None
    log: LogSink


@dataclass(frozen=True)
class _Job:
    """What one claim sends: one delivery, or a coalesced burst to one Slack destination."""

    state: DestinationState
    deliveries: list[DeliveryRow]
    alerts: dict[str, repo.StoredAlert]

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


class SendingWorker(PollingWorker):
    """A polling worker that sends alerts, with the collaborators and retry policy it needs."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        directory: Directory,
        senders: Senders,
        options: AlertsOptions,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._directory = directory
        self._senders = senders
        self._options = options
        self._clock = clock
        self._retry = options.retry_policy()
        interval, stall_seconds = self.polling(options)
        super().__init__(interval=interval, stall_seconds=stall_seconds)

    @staticmethod
    @abstractmethod
    def polling(options: AlertsOptions) -> tuple[float, float]:
        """Return the seconds between rounds and the seconds without one that mean stalled."""


class DeliveryWorker(SendingWorker):
    """Sends due deliveries with pacing, a circuit breaker and retries; one of several replicas."""

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
        """Poll again at once while there is work."""
        return done > 0

    async def tick(self) -> int:
        """Serve every destination with due deliveries once; return how many were attempted."""
        async with self._sessions() as session, session.begin():
            due = await repo.due_destinations(
                session, now=self._clock(), limit=self._options.batch_size
            )
        served = await asyncio.gather(*(self._serve(channel, dest) for channel, dest in due))
        return sum(served)

    async def _serve(self, channel: DeliveryChannel, destination: str) -> int:
        job = await self._claim(channel, destination)
        if job is None:
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
        async with self._sessions() as session, session.begin():
            now = self._clock()
            until = now + timedelta(seconds=self._options.lease_seconds)
            state = await repo.lease_destination(
                session, channel, destination, now=now, until=until
            )
            if state is None:
                return None  # another worker serves this destination
            due = await repo.due_deliveries(
                session, channel, destination, now=now, limit=self._options.batch_size
            )
            chosen, state = await self._admit(session, state, due, now=now)
            if not chosen:
                await repo.save_destination(session, state, release=True)
                return None
            await repo.save_destination(session, state, release=False)
            stored = await repo.load_alerts(session, {d.alert_id for d in chosen})
        return _Job(state, chosen, stored)

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
        message = slack_message(alerts, directory=self._directory, on_behalf_of=first.on_behalf_of)
        return await self._senders.slack.post(first.destination, message)

    async def _send_email(self, delivery: DeliveryRow, alert: AlertRequested) -> SendResult:
        if self._senders.email is None:
            return transport_missing("email")
        rendered = email_message(
            alert,
            recipient_id=delivery.recipient_id,
            directory=self._directory,
            on_behalf_of=delivery.on_behalf_of,
        )
        return await self._senders.email.send(
            delivery.destination, rendered, message_key=delivery.idempotency_key
        )

    async def _record(self, job: _Job, result: SendResult, *, duration_ms: int) -> None:
        async with unit_of_work(self._sessions) as uow:
            now = self._clock()
            if result.ok:
                state = await self._record_sent(uow, job, result, now, duration_ms)
            else:
                state = await self._record_failure(uow, job, result, now, duration_ms)
            await repo.save_destination(uow.session, state, release=True)

    async def _record_sent(
        self,
        uow: UnitOfWork,
        job: _Job,
        result: SendResult,
        now: datetime,
        duration_ms: int,
    ) -> DestinationState:
        ids = [d.id for d in job.deliveries]
        await repo.mark_sent(
            uow.session, ids, sent_at=now, slack_ts=result.slack_ts, coalesced=job.coalesced
        )
        records = [
            AttemptRecord(d.id, d.attempts + 1, "sent", None, duration_ms, now, job.coalesced)
            for d in job.deliveries
        ]
        await repo.log_attempts(uow.session, records)
        for delivery in job.deliveries:
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
        records: list[AttemptRecord] = []
        for delivery in job.deliveries:
            attempt = delivery.attempts + 1
            _, decision = judge(result.failure, attempts=attempt, policy=self._retry)
            retrying = decision.action is Action.RETRY
            retry_at = (
                max(now + timedelta(seconds=decision.delay_seconds), not_before)
                if retrying
                else None
            )
            await repo.mark_failed_attempt(
                uow.session, [delivery.id], error=decision.reason, retry_at=retry_at
            )
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
