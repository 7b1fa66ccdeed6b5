"""The delivery worker: sends recorded deliveries, outside any consumer transaction.

Up to `batch_size` destinations are served at once, continuously: as soon as one is done, the
next round fills its place with the most urgent due destination not already in hand, so an urgent
delivery waits for a free place, never for a whole round of slower sends. For each destination
the worker takes the destination's lease in a short transaction (FOR UPDATE SKIP LOCKED, so
replicas share destinations and never send the same delivery twice), asks the circuit breaker and
the pacer what may go now (up to `messages_per_lease` messages, so a backlog costs one claim per
lease, not per alert), and commits. The sends happen with no transaction open,
one after another in the admitted order and only while the lease has half its time left (a
worker stalled past that sends nothing more); the first failure ends the lease's sends. Each
send's outcome, attempt and outgoing events are recorded in a short transaction (the last one
releases the lease), retried while the database is away: a message that is out must not be sent
again for want of its record (delivery_record.OutcomeRecorder says for how long). A Slack
message's record runs while the next message goes out (one record at a time, in order; the
sends that went out meanwhile share the next one); an email's or a log line's comes before the
next send. A worker that dies mid-send leaves a lease that expires, and marks on what it took:
the next sender looks for a marked Slack message in its conversation before posting it
(chat.postMessage takes no idempotency key; the message's metadata names its deliveries); an
email goes again, with its Message-ID, the one at-least-once window left.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from functools import cached_property
from typing import Any

import structlog

from tandem_alerts.adapters import destinations as dest
from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters import sends
from tandem_alerts.adapters.destinations import DestinationState
from tandem_alerts.adapters.repository import DeliveryRow
from tandem_alerts.adapters.senders import SendResult, transport_missing
from tandem_alerts.delivery_record import Job, OutcomeRecorder, Sent
from tandem_alerts.domain.admission import admit
from tandem_alerts.domain.circuit import CircuitPolicy
from tandem_alerts.domain.compose import email_message, slack_message
from tandem_alerts.domain.pacing import PacingPolicy, QueuedAlert
from tandem_alerts.sending import SendingWorker
from tandem_alerts.settings import AlertsOptions
from tandem_shared.events import AlertRequested, DeliveryChannel
from tandem_shared.telemetry import context_from, links_to, tracer

log = structlog.get_logger(__name__)
_tracer = tracer(__name__)

# Slack messages of a lease out but not yet recorded, at most, besides the one going out (a
# sender that dies leaves them marked, and the next one finds them in the conversation). Records
# catch up in batches when the database falls behind the sends.
UNRECORDED_MOST = 4
# Looked for from a little before the earlier lease took it: Slack's clock is not ours.
_CLOCK_SKEW = timedelta(minutes=1)


class DeliveryWorker(SendingWorker):
    """Sends due deliveries with pacing, a circuit breaker and retries; one of several replicas."""

    def __init__(self, **collaborators: Any) -> None:
        super().__init__(**collaborators)
        # The destinations being served now, each by its own task.
        self._serving: dict[tuple[DeliveryChannel, str], asyncio.Task[int]] = {}
        self._recorder = OutcomeRecorder(
            sessions=self._sessions,
            clock=self._clock,
            retry=self._retry,
            circuit=self._circuit,
            stopping=self._stopping.is_set,
        )

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
            due = await sends.due_destinations(
                session, now=self._clock(), limit=free + len(serving)
            )
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
        if job is None:
            return 0
        done, last = 0, False
        # Records run behind the sends, one transaction at a time and in order (each starts from
        # the state the one before left): what went out while one ran waits for the next. Only
        # Slack's: an email out and unrecorded at a crash would go twice.
        behind_most = UNRECORDED_MOST if channel is DeliveryChannel.SLACK else 0
        recording: asyncio.Task[DestinationState] | None = None
        behind: list[Sent] = []  # sent, not yet in a record
        in_record = 0  # messages in the running record
        try:
            for n, message in enumerate(job.messages, start=1):
                if not job.lasts():
                    log.warning(
                        "destination lease ran short; the rest goes with the next lease",
                        channel=channel.value,
                        destination=destination,
                        unsent=[d.alert_id for m in job.messages[n - 1 :] for d in m],
                    )
                    break
                sent = await self._found_posted(job, message) or await self._send_traced(
                    job, message
                )
                behind.append(sent)
                done += len(message)
                last = n == len(job.messages) or not sent.result.ok
                if recording is not None and (
                    last or recording.done() or in_record + len(behind) >= behind_most
                ):
                    job, recording = replace(job, state=await recording), None
                if recording is None:
                    unsent = _ids(job.messages[n:]) if last else []
                    record = self._recorder.record(job, behind, release=last, unsent=unsent)
                    recording, in_record, behind = asyncio.create_task(record), len(behind), []
                    if not behind_most:
                        job, recording = replace(job, state=await recording), None
                if last:
                    break  # a failure ends the lease: the breaker and the pacer have heard of it
        except Exception:
            # A send raised (a bug, a vanished alert row): what went out before it is recorded,
            # and the lease runs out.
            if recording is not None:
                job, recording = replace(job, state=await recording), None
            if behind:
                await self._recorder.record(job, behind, release=False)
            raise
        if recording is not None:
            job = replace(job, state=await recording)
        if not last:  # stopped short: what went out is recorded, and the lease ends
            unsent = _ids(job.messages[n - 1 :])
            await self._recorder.record(job, behind, release=True, unsent=unsent)
        return done

    async def _found_posted(self, job: Job, message: list[DeliveryRow]) -> Sent | None:
        """A Slack message an earlier lease's sender posted and died before recording, found in
        the conversation (its metadata names the deliveries), so it is not posted twice. Email
        has no such look-up; its resend keeps the Message-ID, which mail clients collapse."""
        doubted = [d.sending_since for d in message if d.sending_since is not None]
        slack = self._senders.slack if message[0].channel is DeliveryChannel.SLACK else None
        if not doubted or slack is None:
            return None
        since = min(doubted) - _CLOCK_SKEW
        found = await slack.find_posted(job.state.destination, [d.id for d in message], since=since)
        log.warning(
            "a delivery an earlier sender took was not recorded; "
            + ("found it posted, recording it" if found else "not posted, posting it"),
            channel=job.state.channel.value,
            destination=job.state.destination,
            deliveries=[d.id for d in message],
        )
        return Sent(message, found, 0) if found is not None else None

    async def _send_traced(self, job: Job, message: list[DeliveryRow]) -> Sent:
        # Sent later, from rows: continue the first request's trace, link a burst's others.
        first, *others = job.trace_contexts(message)
        with _tracer.start_as_current_span(
            "alert deliver",
            context=context_from(first),
            links=links_to(others),
            attributes={
                "tandem.channel": job.state.channel.value,
                "tandem.deliveries": len(message),
            },
        ):
            started = time.perf_counter()
            result = await self._send(job, message)
        return Sent(message, result, int((time.perf_counter() - started) * 1000))

    async def _claim(self, channel: DeliveryChannel, destination: str) -> Job | None:
        # Taken before the clock: the monotonic deadline may only end earlier than the lease.
        lease_seconds = self._options.lease_seconds
        lease_ends = time.monotonic() + lease_seconds
        async with self._sessions() as session, session.begin():
            now = self._clock()
            until = now + timedelta(seconds=lease_seconds)
            claim = await dest.claim_destination(
                session,
                channel,
                destination,
                now=now,
                until=until,
                limit=self._options.batch_size,
            )
            if claim is None:
                return None  # another worker serves this destination
            due = claim.due
            admission = admit(
                [QueuedAlert(alert_id=str(d.id), enqueued_at=d.created_at) for d in due],
                pacer=claim.state.pacer,
                circuit=claim.state.circuit,
                paced=channel is DeliveryChannel.SLACK,
                most=self._options.messages_per_lease,
                now=now,
                circuit_policy=self._circuit,
                pacing_policy=self._pacing,
            )
            if admission.held:
                held = [int(i) for i in admission.held]
                await repo.reschedule(session, held, due_at=admission.held_until or now)
            state = replace(claim.state, pacer=admission.pacer, circuit=admission.circuit)
            if not admission.messages:
                await dest.save_destination(session, state, release=True)
                return None
            if state != claim.state:  # the lease itself is written already
                await dest.save_destination(session, state, release=False)
            by_id = {str(d.id): d for d in due}
            messages = [[by_id[i] for i in ids] for ids in admission.messages]
            await repo.mark_sending(session, [d.id for m in messages for d in m], now=now)
            sending = {d.alert_id for m in messages for d in m}
            stored = {
                alert_id: repo.stored_alert(row)
                for alert_id, row in claim.requests.items()
                if alert_id in sending
            }
        return Job(state, messages, stored, lease_ends, lease_seconds)

    async def _send(self, job: Job, message: list[DeliveryRow]) -> SendResult:
        first = message[0]
        alerts = [job.alerts[d.alert_id].alert for d in message if d.alert_id in job.alerts]
        if not alerts:
            raise LookupError(f"alert {first.alert_id} of delivery {first.id} is not stored")
        match first.channel:
            case DeliveryChannel.SLACK:
                return await self._send_slack(message, alerts)
            case DeliveryChannel.EMAIL:
                return await self._send_email(first, alerts[0])
            case DeliveryChannel.LOG:
                return self._senders.log.send(
                    first.destination, alerts, digest=False, covering_for=first.on_behalf_of
                )

    async def _send_slack(
        self, deliveries: list[DeliveryRow], alerts: list[AlertRequested]
    ) -> SendResult:
        first = deliveries[0]
        if self._senders.slack is None:
            return transport_missing("slack")
        message = slack_message(
            alerts,
            directory=self._directory,
            on_behalf_of=first.on_behalf_of,
            recipient_id=first.recipient_id,
        )
        ids = [d.id for d in deliveries]
        return await self._senders.slack.post(first.destination, message, deliveries=ids)

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


def _ids(messages: list[list[DeliveryRow]]) -> list[int]:
    return [d.id for m in messages for d in m]
