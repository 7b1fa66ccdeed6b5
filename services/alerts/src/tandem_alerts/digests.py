"""The digest worker: sends each person's deferred alerts as one message at their digest time.

The digest queue is the person's deferred deliveries. A person's digest is leased (SKIP LOCKED) in
a short transaction, sent per channel with no transaction open, and recorded in a second one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters.outcomes import delivery_failure, publish_delivered, publish_failed
from tandem_alerts.adapters.repository import AttemptRecord, DeliveryRow, StoredAlert
from tandem_alerts.adapters.senders import SendResult, judge, transport_missing
from tandem_alerts.domain.delivery_policy import Action
from tandem_alerts.domain.digest import Digest, build_digest, is_digest_due
from tandem_alerts.domain.email_render import render_digest_email
from tandem_alerts.domain.slack_summary import render_digest
from tandem_alerts.sending import SendingWorker
from tandem_alerts.settings import AlertsOptions
from tandem_shared.directory import Person
from tandem_shared.events import DeliveryChannel
from tandem_shared.uow import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _DigestJob:
    person: Person
    queue: list[DeliveryRow]
    alerts: dict[str, StoredAlert]
    generated_at: datetime


class DigestWorker(SendingWorker):
    """Sends due digests; one of several replicas."""

    @staticmethod
    def polling(options: AlertsOptions) -> tuple[float, float]:
        """Poll every digest_poll_seconds; stalled after ten missed rounds and a minute."""
        return options.digest_poll_seconds, 10 * options.digest_poll_seconds + 60

    async def tick(self) -> int:
        """Send every due digest once; return how many digests went out."""
        async with self._sessions() as session, session.begin():
            recipients = await repo.recipients_with_digest_queue(session, now=self._clock())
            await self.refresh_people(session)
        sent = 0
        for recipient_id in recipients:
            sent += await self._serve(recipient_id)
        return sent

    async def _serve(self, recipient_id: str) -> int:
        person = self._directory.get(recipient_id)
        if person is None:
            log.warning(
                "digest queue of a person no longer in the directory", recipient=recipient_id
            )
            return 0
        job = await self._claim(person)
        if job is None:
            return 0
        groups: dict[tuple[DeliveryChannel, str], list[DeliveryRow]] = defaultdict(list)
        for delivery in job.queue:
            groups[(delivery.channel, delivery.destination)].append(delivery)
        outcomes = []
        for (channel, destination), rows in groups.items():
            digest = build_digest(
                person.id,
                [job.alerts[r.alert_id].alert for r in rows if r.alert_id in job.alerts],
                generated_at=job.generated_at,
            )
            started = time.perf_counter()
            result = await self._send(channel, destination, digest, person)
            outcomes.append((rows, result, int((time.perf_counter() - started) * 1000)))
        await self._record(job, outcomes)
        return sum(1 for _, result, _ in outcomes if result.ok)

    async def _claim(self, person: Person) -> _DigestJob | None:
        async with self._sessions() as session, session.begin():
            now = self._clock()
            until = now + timedelta(seconds=self._options.lease_seconds)
            last = await repo.lease_digest(session, person.id, now=now, until=until)
            if last is None:
                return None
            if not is_digest_due(person, last_sent_at=last, now=now):
                await repo.release_digest(session, person.id, sent_at=None)
                return None
            queue = await repo.deferred_deliveries(session, person.id)
            stored = await repo.load_alerts(session, {d.alert_id for d in queue})
        return _DigestJob(person, queue, stored, now)

    async def _send(
        self, channel: DeliveryChannel, destination: str, digest: Digest, person: Person
    ) -> SendResult:
        match channel:
            case DeliveryChannel.SLACK:
                if self._senders.slack is None:
                    return transport_missing("slack")
                return await self._senders.slack.post(destination, render_digest(digest))
            case DeliveryChannel.EMAIL:
                if self._senders.email is None:
                    return transport_missing("email")
                rendered = render_digest_email(digest, recipient=person)
                key = f"digest:{person.id}:{int(digest.generated_at.timestamp())}"
                return await self._senders.email.send(destination, rendered, message_key=key)
            case DeliveryChannel.LOG:
                alerts = [a for g in digest.groups for a in g.alerts]
                return self._senders.log.send(destination, alerts, digest=True)

    async def _record(
        self, job: _DigestJob, outcomes: list[tuple[list[DeliveryRow], SendResult, int]]
    ) -> None:
        async with unit_of_work(self._sessions) as uow:
            now = self._clock()
            any_sent = False
            for rows, result, duration_ms in outcomes:
                if result.ok:
                    any_sent = True
                    await self._record_sent(uow, job, rows, now, duration_ms)
                else:
                    await self._record_failure(uow, job, rows, result, now, duration_ms)
            # A failed channel keeps its items for the next digest; the clock moves on a success.
            await repo.release_digest(uow.session, job.person.id, sent_at=now if any_sent else None)

    async def _record_sent(
        self,
        uow: UnitOfWork,
        job: _DigestJob,
        rows: list[DeliveryRow],
        now: datetime,
        duration_ms: int,
    ) -> None:
        session = uow.session
        await repo.mark_sent(
            session, [r.id for r in rows], sent_at=now, slack_ts=None, coalesced=True
        )
        await repo.log_attempts(
            session,
            [
                AttemptRecord(r.id, r.attempts + 1, "sent", None, duration_ms, now, True, True)
                for r in rows
            ],
        )
        for row in rows:
            publish_delivered(
                uow,
                row,
                job.alerts.get(row.alert_id),
                attempts=row.attempts + 1,
                coalesced=True,
                now=now,
            )
        log.info(
            "digest sent", recipient=job.person.id, channel=rows[0].channel.value, alerts=len(rows)
        )

    async def _record_failure(
        self,
        uow: UnitOfWork,
        job: _DigestJob,
        rows: list[DeliveryRow],
        result: SendResult,
        now: datetime,
        duration_ms: int,
    ) -> None:
        assert result.failure is not None
        session = uow.session
        first = await repo.first_failures(session, [r.id for r in rows])
        for row in rows:
            attempt = row.attempts + 1
            age = (now - first.get(row.id, now)).total_seconds()
            _, decision = judge(
                result.failure, attempts=attempt, age_seconds=age, policy=self._retry
            )
            giving_up = decision.action is not Action.RETRY
            await repo.mark_failed_attempt(
                session, [row.id], error=decision.reason, retry_at=None if giving_up else now
            )
            outcome = "failed" if giving_up else "retry"
            await repo.log_attempts(
                session,
                [
                    AttemptRecord(
                        row.id, attempt, outcome, decision.reason, duration_ms, now, True, True
                    )
                ],
            )
            if giving_up:
                failure = delivery_failure(
                    row,
                    error=decision.reason,
                    attempts=attempt,
                    permanent=decision.permanent,
                    now=now,
                )
                await publish_failed(
                    uow,
                    idempotency_key=row.idempotency_key,
                    failure=failure,
                    stored=job.alerts.get(row.alert_id),
                )
        log.warning("digest send failed", recipient=job.person.id, reason=repr(result.failure))
