"""The consumer loop: at-least-once delivery made effectively-once by an inbox, with a DLQ.

For each message: one database transaction holds the inbox row, the handler's writes and its
outgoing outbox rows; the offset is committed only after that transaction. A handler that keeps
failing is retried a bounded number of times, then the message goes to the group's dead-letter
topic (or that of `dead_letter_group`) with the error, and the partition moves on.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_shared.envelope import Envelope, EnvelopeError
from tandem_shared.outbox import add_to_outbox, claim_inbox
from tandem_shared.settings import KafkaSettings
from tandem_shared.telemetry import extract_context, tracer
from tandem_shared.topics import dead_letter_topic
from tandem_shared.uow import UnitOfWork

__all__ = ["ConsumerLoop", "Handler", "UnitOfWork"]

log = structlog.get_logger(__name__)
_tracer = tracer(__name__)

CONSUMED = Counter("tandem_events_consumed_total", "Events consumed", ["group", "topic", "outcome"])
HANDLER_SECONDS = Histogram(
    "tandem_handler_seconds", "Handler latency including its transaction", ["group", "topic"]
)
DEAD_LETTERED = Counter("tandem_dead_letters_total", "Messages sent to a DLQ", ["group", "topic"])
LAG = Gauge(
    "tandem_consumer_lag", "Messages behind the partition end", ["group", "topic", "partition"]
)


Handler = Callable[[Envelope, UnitOfWork], Awaitable[None]]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.commit(only=revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", group=self._loop.group, partitions=len(assigned))


class ConsumerLoop:
    """Consumes topics for one group and runs a handler per event, transactionally."""

    def __init__(
        self,
        *,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        sessions: async_sessionmaker,  # type: ignore[type-arg]
        producer: AIOKafkaProducer,
        settings: KafkaSettings,
        dead_letter_group: str | None = None,
    ) -> None:
        self.group = group
        # A group that changes (a rebuild's fresh one) keeps dead-lettering where it is read.
        self.dead_letter_topic = dead_letter_topic(dead_letter_group or group)
        self.topics = list(topics)
        self._handler = handler
        self._sessions = sessions
        self._producer = producer
        self._settings = settings
        self._processed: dict[TopicPartition, int] = {}  # offsets not yet committed
        self._position: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.last_poll_monotonic = time.monotonic()

    def stop(self) -> None:
        """Finish the message in hand, commit, and return from run()."""
        self._stopping.set()

    @property
    def assigned(self) -> bool:
        return self._consumer is not None and bool(self._consumer.assignment())

    def caught_up(self) -> bool:
        """True when partitions are assigned and everything fetched so far was processed."""
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return False
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None or consumer.last_poll_timestamp(tp) is None:
                return False
            if self._position.get(tp, 0) < highwater:
                return False
        return True

    def healthy(self) -> bool:
        """True while the loop polls: a handler stuck past stall_seconds fails readiness."""
        return time.monotonic() - self.last_poll_monotonic < self._settings.stall_seconds

    async def run(self) -> None:
        """Consume until stopped; on stop, commit what was processed and leave the group."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=self.group,
            client_id=f"{self._settings.client_id}-{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._settings.max_poll_records,
            session_timeout_ms=self._settings.session_timeout_ms,
            heartbeat_interval_ms=self._settings.heartbeat_interval_ms,
            rebalance_timeout_ms=self._settings.rebalance_timeout_ms,
        )
        consumer.subscribe(self.topics, listener=_Rebalance(self))
        self._consumer = consumer
        await consumer.start()
        try:
            while not self._stopping.is_set():
                self.last_poll_monotonic = time.monotonic()
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    for record in records:
                        if self._stopping.is_set():
                            break
                        await self._process(record)
                        self._processed[tp] = record.offset + 1
                        self._position[tp] = record.offset + 1
                    self._update_lag(consumer, tp)
                await self.commit()
        finally:
            await self.commit()
            await consumer.stop()
            self._consumer = None

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the offsets of processed messages (of `only` these partitions)."""
        consumer = self._consumer
        if consumer is None or not self._processed:
            return
        assigned = consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(offset, "")
            for tp, offset in self._processed.items()
            if tp in assigned and (only is None or tp in only)
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved during a rebalance: their new owner redelivers from the last
            # committed offset and the inbox absorbs what we already processed.
            log.warning("offset commit lost to a rebalance", group=self.group, error=repr(exc))
        for tp in offsets:
            self._processed.pop(tp, None)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        topic = record.topic
        with _tracer.start_as_current_span(
            f"{topic} process",
            context=extract_context(record.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.consumer.group.name": self.group,
            },
        ):
            try:
                envelope = Envelope.from_bytes(record.value or b"")
            except EnvelopeError as exc:
                # A poison message: retrying cannot help.
                await self._dead_letter(record, f"undecodable: {exc}", attempts=0)
                return
            error: BaseException | None = None
            for attempt in range(1, self._settings.max_attempts + 1):
                started = time.perf_counter()
                try:
                    outcome = await self._handle_once(envelope, topic)
                except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                    error = exc
                    log.warning(
                        "handler failed",
                        group=self.group,
                        topic=topic,
                        event_id=envelope.id,
                        attempt=attempt,
                        error=repr(exc),
                    )
                    await asyncio.sleep(self._settings.retry_backoff_seconds * 2 ** (attempt - 1))
                    continue
                HANDLER_SECONDS.labels(self.group, topic).observe(time.perf_counter() - started)
                CONSUMED.labels(self.group, topic, outcome).inc()
                return
            assert error is not None
            reason = "".join(traceback.format_exception_only(type(error), error)).strip()
            await self._dead_letter(record, reason, attempts=self._settings.max_attempts)

    async def _handle_once(self, envelope: Envelope, topic: str) -> str:
        async with self._sessions() as session, session.begin():
            if not await claim_inbox(session, event_id=envelope.id, topic=topic):
                return "duplicate"
            uow = UnitOfWork(session)
            await self._handler(envelope, uow)
            await add_to_outbox(session, uow.pending)
        return "processed"

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, *, attempts: int
    ) -> None:
        headers = [
            *(record.headers or ()),
            ("dlq.reason", reason[:4000].encode()),
            ("dlq.group", self.group.encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.attempts", str(attempts).encode()),
        ]
        await self._producer.send_and_wait(
            self.dead_letter_topic, value=record.value, key=record.key, headers=headers
        )
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

    def _update_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        highwater = consumer.highwater(tp)
        if highwater is not None:
            LAG.labels(self.group, tp.topic, str(tp.partition)).set(
                max(0, highwater - self._processed.get(tp, highwater))
            )
