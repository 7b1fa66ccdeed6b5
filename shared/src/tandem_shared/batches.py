"""How a consumer handles one partition's polled records: in one transaction where it can.

A batch runs in one transaction: one statement claims the inbox rows of all its events, the
handler runs for each new event on the same session, the emitted outbox rows go in one insert,
then it commits. The per-message guarantees are those of one transaction per message:

- a handler that raises rolls the batch back; the events before it are run again as a batch
  (handlers are deterministic: same input, same writes), the failing one is retried alone and
  dead-lettered alone, and the batch goes on after it, so a partition keeps its order;
- a failure no message can be blamed for (the database restarting, a deadlock, a lost
  connection) is retried with back-off, as long as it lasts, and dead-letters nothing;
- an undecodable message, or one of a type no Tandem schema has (when the consumer says which
  types exist), is dead-lettered at once, in its place in the partition's order.

A dead letter is an outbox row, written in the transaction that records the message as handled
in the inbox: it is dead-lettered once, and the retained outbox gives it again to a broker that
lost it. A database that cannot take it is waited for, as for any batch.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter as Counted
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import structlog
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_shared.db import is_transient
from tandem_shared.dlq import dead_letter_row
from tandem_shared.envelope import Envelope, EnvelopeError
from tandem_shared.outbox import add_to_outbox, claim_inbox, claim_inbox_batch
from tandem_shared.settings import KafkaSettings
from tandem_shared.telemetry import extract_context, tracer
from tandem_shared.uow import UnitOfWork

log = structlog.get_logger(__name__)
_tracer = tracer(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handler = Callable[[Envelope, UnitOfWork], Awaitable[None]]

CONSUMED = Counter("tandem_events_consumed_total", "Events consumed", ["group", "topic", "outcome"])
HANDLER_SECONDS = Histogram(
    "tandem_handler_seconds", "Handler latency, without its batch's commit", ["group", "topic"]
)
BATCH_SIZE = Histogram(
    "tandem_consumer_batch_records",
    "Records handled in one transaction",
    ["group"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
DEAD_LETTERED = Counter("tandem_dead_letters_total", "Messages sent to a DLQ", ["group", "topic"])
TRANSIENT = Counter(
    "tandem_consumer_transient_failures_total",
    "Batches rolled back by a database or network failure and retried",
    ["group"],
)


class _HandlerFailed(Exception):
    """A handler raised while running message `index` of a batch."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(repr(error))
        self.index = index
        self.error = error


@dataclass
class BatchProcessor:
    """Runs a handler over one partition's records; `done` is told each finished offset."""

    group: str
    dead_letter_topic: str
    handler: Handler
    sessions: async_sessionmaker[AsyncSession]
    settings: KafkaSettings
    # Told after a transaction that handled events committed: wakes in-process workers (alert
    # delivery) at once instead of at their next poll.
    after_commit: Callable[[], None] | None = None
    # The event types that exist (None: any). A type outside them is poison: no handler of any
    # version can read it, so it is dead-lettered rather than skipped unseen.
    known_types: frozenset[str] | None = None
    _histograms: dict[str, Histogram] = field(default_factory=dict, init=False, repr=False)

    async def process(self, records: Sequence[Record], done: Callable[[Record], None]) -> None:
        """Handle `records` (one partition's, in order), calling `done` as each one is."""
        BATCH_SIZE.labels(self.group).observe(len(records))
        segment: list[tuple[Record, Envelope]] = []
        for record in records:
            event_id = None
            try:
                envelope = Envelope.from_bytes(record.value or b"")
                event_id = envelope.id
                unknown = self.known_types is not None and envelope.type not in self.known_types
                poison = f"unknown event type {envelope.type!r}" if unknown else None
            except EnvelopeError as exc:
                poison = f"undecodable: {exc}"
            if poison is not None:
                await self._run_segment(segment, done)
                segment = []
                # A poison message: retrying cannot help.
                await self.dead_letter(record, poison, attempts=0, event_id=event_id)
                done(record)
                continue
            segment.append((record, envelope))
        await self._run_segment(segment, done)

    async def _run_segment(
        self, segment: list[tuple[Record, Envelope]], done: Callable[[Record], None]
    ) -> None:
        backoff = self.settings.retry_backoff_seconds
        while segment:
            try:
                await self._in_one_transaction(segment)
            except _HandlerFailed as failed:
                # Commit the ones before it, then give the failing one its own tries.
                if failed.index:
                    await self._run_segment(segment[: failed.index], done)
                await self._alone(*segment[failed.index])
                done(segment[failed.index][0])
                segment = segment[failed.index + 1 :]
                continue
            except Exception as exc:
                if not is_transient(exc):
                    raise
                TRANSIENT.labels(self.group).inc()
                log.warning("batch failed; retrying", group=self.group, error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.05), 5.0)
                continue
            for record, _ in segment:
                done(record)
            return

    async def _in_one_transaction(self, segment: Sequence[tuple[Record, Envelope]]) -> None:
        async with self.sessions() as session, session.begin():
            fresh = await claim_inbox_batch(session, [(e.id, r.topic) for r, e in segment])
            uow = UnitOfWork(session)
            outcomes: list[tuple[str, str]] = []
            for index, (record, envelope) in enumerate(segment):
                if envelope.id not in fresh:
                    outcomes.append((record.topic, "duplicate"))
                    continue
                fresh.discard(envelope.id)  # the same event twice in one batch runs once
                try:
                    await self._handle(record, envelope, uow)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    raise _HandlerFailed(index, exc) from exc
                outcomes.append((record.topic, "processed"))
            try:
                await uow.flush()
            except Exception as exc:
                if is_transient(exc):
                    raise
                # A deferred write (UnitOfWork.before_commit) failed for some message's sake:
                # the first is retried alone, then the rest, until the one whose own
                # transaction fails is dead-lettered.
                raise _HandlerFailed(0, exc) from exc
        for (topic, outcome), count in Counted(outcomes).items():
            CONSUMED.labels(self.group, topic, outcome).inc(count)
        if self.after_commit is not None and any(o == "processed" for _, o in outcomes):
            self.after_commit()

    async def _handle(self, record: Record, envelope: Envelope, uow: UnitOfWork) -> None:
        with _tracer.start_as_current_span(
            f"{record.topic} process",
            context=extract_context(record.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.consumer.group.name": self.group,
            },
        ):
            started = time.perf_counter()
            await self.handler(envelope, uow)
            self._handler_seconds(record.topic).observe(time.perf_counter() - started)

    def _handler_seconds(self, topic: str) -> Histogram:
        # The labelled histogram of each topic, looked up once rather than per message.
        found = self._histograms.get(topic)
        if found is None:
            found = self._histograms[topic] = HANDLER_SECONDS.labels(self.group, topic)
        return found

    async def _alone(self, record: Record, envelope: Envelope) -> None:
        """Retry one message in its own transaction, then dead-letter it."""
        error: Exception | None = None
        failures = 0
        while failures < self.settings.max_attempts:
            try:
                await self._in_one_transaction([(record, envelope)])
                return
            except _HandlerFailed as failed:
                error = failed.error
                failures += 1
            except Exception as exc:
                if not is_transient(exc):
                    raise
                error = exc  # the database's trouble is not the message's: no try is used
            log.warning(
                "handler failed",
                group=self.group,
                topic=record.topic,
                event_id=envelope.id,
                attempt=failures,
                error=repr(error),
            )
            await asyncio.sleep(self.settings.retry_backoff_seconds * 2 ** max(failures - 1, 0))
        assert error is not None
        reason = "".join(traceback.format_exception_only(type(error), error)).strip()
        await self.dead_letter(
            record, reason, attempts=self.settings.max_attempts, event_id=envelope.id
        )

    async def dead_letter(
        self, record: Record, reason: str, *, attempts: int, event_id: str | None
    ) -> None:
        """Dead-letter a message, with why and where it came from, through the outbox."""
        row = dead_letter_row(
            self.dead_letter_topic,
            record,
            reason,
            group=self.group,
            attempts=attempts,
            event_id=event_id,
        )
        backoff = self.settings.retry_backoff_seconds
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    fresh = await claim_inbox(session, event_id=row["event_id"], topic=record.topic)
                    if fresh:
                        await add_to_outbox(session, [row])
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The database's trouble, not the message's: wait for it, as a batch does.
                TRANSIENT.labels(self.group).inc()
                log.warning("dead letter failed; retrying", group=self.group, error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.05), 5.0)
        if not fresh:
            return  # dead-lettered before this redelivery (a rebalance, a restart)
        DEAD_LETTERED.labels(self.group, record.topic).inc()
        CONSUMED.labels(self.group, record.topic, "dead_lettered").inc()
        log.error(
            "message dead-lettered",
            group=self.group,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
