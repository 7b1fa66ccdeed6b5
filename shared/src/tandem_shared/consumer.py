"""The consumer loop: partitions processed concurrently, each in order, in batched transactions.

At-least-once delivery is made effectively-once by an inbox (see `batches`): a partition's polled
records run in one transaction (inbox rows, the handler's writes, outbox rows) and their offsets
are committed after it. Partitions run concurrently, up to `max_concurrency` at once, each in
its own order, so one account's events stay in order (they share a key, so a partition) while a
slow or bulky stream holds only its own partitions.

Two lanes share the slots: bulk topics (`topics.BULK_TOPICS`: intent files, CRM sync) never take
the last one, so a meeting request, a handoff, an alert request or an acknowledgement always
finds a slot free instead of queueing behind a backlog. Bulk batches are also smaller, and none
starts while real-time records wait or run: what a real-time batch can still wait for (a lock a
bulk transaction holds, the process's one CPU) is the bulk batches already in hand.

Records wait in memory per partition; a partition whose queue is full is paused at the fetcher
(the broker keeps the rest), and resumed when its queue drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Sequence

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_shared.batches import BatchProcessor, Handler, Record
from tandem_shared.settings import KafkaSettings
from tandem_shared.topics import BULK_TOPICS, dead_letter_topic
from tandem_shared.uow import UnitOfWork

__all__ = ["ConsumerLoop", "Handler", "UnitOfWork"]

log = structlog.get_logger(__name__)

LAG = Gauge(
    "tandem_consumer_lag", "Messages behind the partition end", ["group", "topic", "partition"]
)
IN_FLIGHT = Gauge("tandem_consumer_partitions_busy", "Partitions being processed", ["group"])

# How often processed offsets are committed while records flow (revokes and stops commit too).
_COMMIT_EVERY = 0.2


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Awaited before the group rebalances: finish the batches in hand, commit them, and
        # drop what was queued (the new owner fetches it from the committed offset).
        await self._loop.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", group=self._loop.group, partitions=len(assigned))


class _Partition:
    """One assigned partition's queue and the task that works through it in order."""

    def __init__(self, loop: ConsumerLoop, tp: TopicPartition) -> None:
        self.tp = tp
        self.queue: deque[Record] = deque()
        self.busy_since: float | None = None
        self.bulk = loop.is_bulk(tp)
        self._loop = loop
        self._wake = asyncio.Event()
        self._closing = False
        self.task = asyncio.create_task(
            self._work(), name=f"{loop.group}:{tp.topic}:{tp.partition}"
        )

    def add(self, records: Sequence[Record]) -> None:
        self.queue.extend(records)
        self._wake.set()

    async def close(self) -> None:
        """Finish the batch in hand and stop; queued records are dropped (not yet committed)."""
        self._closing = True
        self.queue.clear()
        self._wake.set()
        await self._loop.realtime_moved()  # a bulk batch waiting for its turn stops waiting
        await self.task

    async def _work(self) -> None:
        loop = self._loop
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self.queue and not self._closing:
                if self.bulk:
                    await loop.realtime_quiet(unless=lambda: self._closing)
                async with loop.slot(self.tp):
                    if self._closing:
                        return
                    limit = loop.bulk_batch_max_records if self.bulk else loop.batch_max_records
                    size = min(len(self.queue), limit)
                    batch = [self.queue.popleft() for _ in range(size)]
                    self.busy_since = time.monotonic()
                    IN_FLIGHT.labels(loop.group).inc()
                    try:
                        await loop.processor.process(batch, loop.done)
                    finally:
                        self.busy_since = None
                        IN_FLIGHT.labels(loop.group).dec()
                loop.drained(self)
                if not self.bulk:
                    await loop.realtime_moved()


class ConsumerLoop:
    """Consumes topics for one group and runs a handler per event, transactionally."""

    def __init__(
        self,
        *,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        sessions: async_sessionmaker[AsyncSession],
        settings: KafkaSettings,
        dead_letter_group: str | None = None,
        bulk_topics: Collection[str] = BULK_TOPICS,
        batch_max_records: int | None = None,
        after_commit: Callable[[], None] | None = None,
        known_types: Collection[str] | None = None,
    ) -> None:
        self.group = group
        self.topics = list(topics)
        # A group that changes (a rebuild's fresh one) keeps dead-lettering where it is read.
        self.dead_letter_topic = dead_letter_topic(dead_letter_group or group)
        self._settings = settings
        self.processor = BatchProcessor(
            group,
            self.dead_letter_topic,
            handler,
            sessions,
            settings,
            after_commit,
            None if known_types is None else frozenset(known_types),
        )
        self.batch_max_records = batch_max_records or settings.batch_max_records
        self._bulk_topics = frozenset(bulk_topics)
        self.bulk_batch_max_records = min(settings.bulk_batch_max_records, self.batch_max_records)
        self._realtime = asyncio.Condition()  # notified as real-time partitions make progress
        slots = settings.max_concurrency
        self._slots = asyncio.Semaphore(slots)
        self._bulk_slots = asyncio.Semaphore(max(1, slots - 1))
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._processed: dict[TopicPartition, int] = {}  # offsets not yet committed
        self._position: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._last_commit = 0.0
        self.last_poll_monotonic = time.monotonic()

    def stop(self) -> None:
        """Finish the batches in hand, commit, and return from run()."""
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
        """True while the loop polls and no batch is stuck past stall_seconds."""
        now, stall = time.monotonic(), self._settings.stall_seconds
        if now - self.last_poll_monotonic >= stall:
            return False
        busy = (p.busy_since for p in self._partitions.values() if p.busy_since is not None)
        return all(now - since < stall for since in busy)

    def is_bulk(self, tp: TopicPartition) -> bool:
        return tp.topic in self._bulk_topics

    def _realtime_idle(self) -> bool:
        return not any(
            p.queue or p.busy_since is not None for p in self._partitions.values() if not p.bulk
        )

    async def realtime_quiet(self, *, unless: Callable[[], bool]) -> None:
        """Return once no real-time partition has records waiting or a batch running."""
        async with self._realtime:
            await self._realtime.wait_for(lambda: unless() or self._realtime_idle())

    async def realtime_moved(self) -> None:
        """A real-time batch ended or a partition left: let waiting bulk batches look again."""
        async with self._realtime:
            self._realtime.notify_all()

    def slot(self, tp: TopicPartition) -> contextlib.AbstractAsyncContextManager[None]:
        """The processing slot a batch of `tp` runs in: bulk partitions leave one free."""
        if self.is_bulk(tp):
            return _both(self._bulk_slots, self._slots)
        return _both(self._slots)

    def done(self, record: Record) -> None:
        """A record's effects committed (or it was dead-lettered): its offset may be."""
        tp = TopicPartition(record.topic, record.partition)
        self._processed[tp] = record.offset + 1
        self._position[tp] = record.offset + 1

    def drained(self, partition: _Partition) -> None:
        """After a batch: resume a paused partition once its queue has room, update lag."""
        consumer = self._consumer
        if consumer is None or partition.tp not in consumer.assignment():
            return
        if len(partition.queue) < self.batch_max_records and partition.tp in consumer.paused():
            consumer.resume(partition.tp)
        highwater = consumer.highwater(partition.tp)
        if highwater is not None:
            position = self._position.get(partition.tp, highwater)
            LAG.labels(self.group, partition.tp.topic, str(partition.tp.partition)).set(
                max(0, highwater - position)
            )

    async def run(self) -> None:
        """Consume until stopped; on stop, commit what was processed and leave the group."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=self.group,
            client_id=f"{self._settings.client_id}-{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._settings.max_poll_records,
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
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
                self._raise_if_a_partition_failed()
                fetched = await consumer.getmany(timeout_ms=200)
                for tp, records in fetched.items():
                    if records and tp in consumer.assignment():
                        self._dispatch(consumer, tp, records)
                if time.monotonic() - self._last_commit >= _COMMIT_EVERY:
                    await self.commit()
        finally:
            await self.release(set(self._partitions))
            await self.commit()
            await consumer.stop()
            self._consumer = None

    def _dispatch(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[Record]
    ) -> None:
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = _Partition(self, tp)
        partition.add(records)
        # Enough queued for two batches: let the broker hold the rest.
        if len(partition.queue) >= 2 * self.batch_max_records:
            consumer.pause(tp)

    def _raise_if_a_partition_failed(self) -> None:
        # The batch code handles every message failure; anything else (the database refusing a
        # dead letter, a bug) stops the loop, and so the service, which is then restarted.
        for partition in self._partitions.values():
            if partition.task.done() and not partition.task.cancelled():
                error = partition.task.exception()
                if error is not None:
                    raise error

    async def release(self, partitions: set[TopicPartition]) -> None:
        """Stop working on `partitions`: finish their batches in hand and commit them."""
        closing = [self._partitions.pop(tp) for tp in partitions if tp in self._partitions]
        results = await asyncio.gather(*(p.close() for p in closing), return_exceptions=True)
        await self.realtime_moved()
        await self.commit(only=partitions)
        for result in results:
            if isinstance(result, BaseException):
                log.error("partition worker failed", group=self.group, error=repr(result))

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the offsets of processed messages (of `only` these partitions)."""
        self._last_commit = time.monotonic()
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
        for tp, committed in offsets.items():
            if self._processed.get(tp) == committed.offset:
                del self._processed[tp]


@contextlib.asynccontextmanager
async def _both(*semaphores: asyncio.Semaphore) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for semaphore in semaphores:
            await stack.enter_async_context(semaphore)
        yield
