"""Recording what a destination's lease sent: outcomes, attempts, outgoing events, its state.

One short transaction per batch of messages sent one after another (one message, unless the
database falls behind the sends): the deliveries marked sent and their attempts logged in one
statement, the outgoing events, and the destination's pacing and circuit state only when the sends
changed them or the lease ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_alerts.adapters import destinations as dest
from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters import sends as sends_sql
from tandem_alerts.adapters.destinations import DestinationState
from tandem_alerts.adapters.outcomes import delivery_failure, publish_delivered, publish_failed
from tandem_alerts.adapters.repository import AttemptRecord, DeliveryRow
from tandem_alerts.adapters.senders import SendResult, judge
from tandem_alerts.domain.circuit import CircuitPolicy
from tandem_alerts.domain.delivery_policy import Action, FailureKind, RetryPolicy, SlackFailure
from tandem_shared.db import is_transient
from tandem_shared.uow import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)

ATTEMPTS = Counter("tandem_alert_attempts_total", "Alert send attempts", ["channel", "outcome"])
RECORD_RETRIES = Counter(
    "tandem_alert_record_retries_total", "Outcomes of sends recorded again after a database error"
)
_DB_ERRORS = (sa_exc.DBAPIError, sa_exc.InterfaceError, sa_exc.DisconnectionError, OSError)


@dataclass(frozen=True)
class Job:
    """What one lease sends: messages, each one delivery or a coalesced burst to one destination."""

    state: DestinationState
    messages: list[list[DeliveryRow]]
    alerts: dict[str, repo.StoredAlert]
    lease_ends: float  # time.monotonic() when the lease runs out
    lease_seconds: float

    def lasts(self) -> bool:
        """True while half the lease is left: room for a send's timeout and its record."""
        return time.monotonic() < self.lease_ends - self.lease_seconds / 2

    def trace_contexts(self, message: list[DeliveryRow]) -> list[dict[str, str] | None]:
        """The stored trace contexts of the requests a message sends, in delivery order."""
        return [
            stored.trace_context if (stored := self.alerts.get(d.alert_id)) else None
            for d in message
        ]


@dataclass(frozen=True)
class Sent:
    """One message's send: its deliveries, the transport's answer and how long it took."""

    deliveries: list[DeliveryRow]
    result: SendResult
    duration_ms: int

    @property
    def coalesced(self) -> bool:
        return len(self.deliveries) > 1


class OutcomeRecorder:
    """Records a lease's sends; retries while the database is away.

    A failure's record is retried while the lease lasts (given up, the delivery is simply tried
    again). A message that went out is recorded however long the database is away, until the
    worker stops: while its task holds the destination, this process claims it for nobody, so
    an outage longer than the lease repeats nothing here; only another replica that takes the
    expired lease first may send it again.
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        retry: RetryPolicy,
        circuit: CircuitPolicy,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._retry = retry
        self._circuit_policy = circuit
        self._stopping = stopping

    async def record(
        self, job: Job, sends: Sequence[Sent], *, release: bool, unsent: Sequence[int] = ()
    ) -> DestinationState:
        """Record the outcomes of messages sent one after another, in one transaction; `unsent`:
        the lease's messages that will not go (their marks go). Return the destination's state
        after them."""
        delay = 0.1
        while True:
            try:
                return await self.record_once(job, sends, release=release, unsent=unsent)
            except _DB_ERRORS as exc:
                left = job.lease_ends - time.monotonic()
                out = any(s.result.ok for s in sends) and not self._stopping()
                if not is_transient(exc) or (left <= delay and not out):
                    raise
                log.warning(
                    "recording a send failed; retrying",
                    channel=job.state.channel.value,
                    destination=job.state.destination,
                    sent=[s.result.ok for s in sends],
                    error=repr(exc),
                    lease_left=round(left, 1),
                )
            RECORD_RETRIES.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def record_once(
        self, job: Job, sends: Sequence[Sent], *, release: bool, unsent: Sequence[int] = ()
    ) -> DestinationState:
        async with unit_of_work(self._sessions) as uow:
            if unsent:
                await repo.unmark_sending(uow.session, unsent)
            now = self._clock()
            # A failure ends a lease's sends: only the last one may have failed.
            sent = [s for s in sends if s.result.ok]
            failed = [s for s in sends if not s.result.ok]
            state, saved = job.state, False
            if sent:
                # With no failure after them, the state they leave is saved with their record.
                after = replace(state, circuit=state.circuit.on_success())
                save = not failed and (release or after != job.state)
                state, saved = await self._record_sent(uow, job, sent, now, save, release)
                if save and not saved:
                    self._lost(state)
            for one in failed:
                state = await self._record_failure(uow, replace(job, state=state), one, now)
            if not saved and (failed or not sent) and (release or state != job.state):
                await self._save(uow.session, state, release=release)
        return state

    @classmethod
    async def _save(cls, session: AsyncSession, state: DestinationState, *, release: bool) -> None:
        if not await dest.save_destination(session, state, release=release):
            cls._lost(state)

    @staticmethod
    def _lost(state: DestinationState) -> None:
        log.warning(
            "destination lease lost while sending; its state is the new holder's",
            channel=state.channel.value,
            destination=state.destination,
        )

    async def _record_sent(
        self,
        uow: UnitOfWork,
        job: Job,
        sends: Sequence[Sent],
        now: datetime,
        save: bool,
        release: bool,
    ) -> tuple[DestinationState, bool]:
        state = replace(job.state, circuit=job.state.circuit.on_success())
        marked, saved = await sends_sql.record_sent(
            uow.session,
            [
                sends_sql.SentMessage(
                    ids=[d.id for d in sent.deliveries],
                    slack_ts=sent.result.slack_ts,
                    slack_channel=sent.result.slack_channel,
                    coalesced=sent.coalesced,
                    duration_ms=sent.duration_ms,
                )
                for sent in sends
            ],
            sent_at=now,
            state=state,
            save=save,
            release=release,
        )
        for sent in sends:
            if repeats := [d.alert_id for d in sent.deliveries if d.id not in marked]:
                # Recorded already: by another sender that took over an expired lease (this
                # send was a repeat), or by our own commit whose answer the database never sent.
                log.warning(
                    "alert already recorded as sent or failed; this send may be a repeat",
                    channel=state.channel.value,
                    destination=state.destination,
                    alerts=repeats,
                )
            for delivery in (d for d in sent.deliveries if d.id in marked):
                publish_delivered(
                    uow,
                    delivery,
                    job.alerts.get(delivery.alert_id),
                    attempts=marked[delivery.id],
                    coalesced=sent.coalesced,
                    now=now,
                )
            ATTEMPTS.labels(state.channel.value, "sent").inc(len(sent.deliveries))
            log.info(
                "alert delivered",
                channel=state.channel.value,
                destination=state.destination,
                alerts=[d.alert_id for d in sent.deliveries],
                coalesced=sent.coalesced,
            )
        return state, saved

    async def _record_failure(
        self,
        uow: UnitOfWork,
        job: Job,
        failed: Sent,
        now: datetime,
    ) -> DestinationState:
        result = failed.result
        assert result.failure is not None
        kind, _ = judge(result.failure, attempts=1, policy=self._retry)
        state = self._after_failure(job.state, kind, result, now)
        # A retry never comes before the breaker lets a trial through.
        not_before = state.circuit.retry_at(policy=self._circuit_policy) or now
        first = await repo.first_failures(uow.session, [d.id for d in failed.deliveries])
        # No answer in time: Slack may have posted it; the retry looks in the conversation first.
        maybe_sent = isinstance(result.failure, SlackFailure) and result.failure.timeout
        records: list[AttemptRecord] = []
        for delivery in failed.deliveries:
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
                uow.session,
                [delivery.id],
                error=decision.reason,
                retry_at=retry_at,
                maybe_sent=maybe_sent,
            ):
                continue  # another sender has recorded it meanwhile; its outcome stands
            outcome = "retry" if retrying else "failed"
            records.append(
                AttemptRecord(
                    delivery.id,
                    attempt,
                    outcome,
                    decision.reason,
                    failed.duration_ms,
                    now,
                    failed.coalesced,
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
            circuit = state.circuit.on_failure(now=now, policy=self._circuit_policy)
            return replace(state, circuit=circuit)
        if kind is FailureKind.RATE_LIMITED:
            wait = getattr(result.failure, "retry_after", None)
            if wait is None:
                wait = self._retry.default_rate_limit_wait
            return replace(state, pacer=state.pacer.throttled(now=now, retry_after=wait))
        return state
