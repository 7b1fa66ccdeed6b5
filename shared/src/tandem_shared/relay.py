"""The outbox relay: publishes committed outbox rows, deleting them in the same transaction.

One statement claims a batch (FOR UPDATE SKIP LOCKED, so replicas share the work) and deletes it;
the transaction commits only once Kafka acknowledged every row, so a relay that dies or fails
before then rolls the delete back and the rows are published again: consumers' inboxes absorb
the duplicates. Deleting, not marking, is what keeps up with ingest's rate: an UPDATE wrote a new
version of every row (its value, its index entries) and a purge deleted it again later. NOTIFY
only wakes the relay early, the poll interval is what guarantees progress.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from murmurhash2 import murmurhash2
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tandem_shared.envelope import utcnow
from tandem_shared.outbox import notify_channel, outbox, purge_published
from tandem_shared.settings import OutboxSettings

log = structlog.get_logger(__name__)


# Rows added to producer batches between two yields to the event loop.
_YIELD_EVERY = 250

# The Java client's murmur2 seed: the same key lands where every Kafka client would put it.
_MURMUR2_SEED = 0x9747B28C


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the producer's default partitioner picks for a key, in C, not pure Python."""
    return partitions[(murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % len(partitions)]


# The oldest pending rows nobody else holds, claimed and deleted in one statement.
_CLAIM = (
    sa.delete(outbox)
    .where(
        outbox.c.id.in_(
            sa.select(outbox.c.id)
            .where(outbox.c.published_at.is_(None))  # rows marked by earlier versions stay put
            .order_by(outbox.c.id)
            .limit(sa.bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .returning(
        outbox.c.id,
        outbox.c.topic,
        outbox.c.key,
        outbox.c.value,
        outbox.c.headers,
        outbox.c.created_at,
    )
)

PUBLISHED = Counter("tandem_events_published_total", "Events published to Kafka", ["topic"])
LAG = Gauge(
    "tandem_outbox_lag_seconds",
    "How long the oldest row of the relay's last batch waited after its commit (0: none waiting)",
    ["schema"],
)


class OutboxRelay:
    """Moves committed outbox rows of one schema onto Kafka."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        schema: str,
        settings: OutboxSettings,
        listen_dsn: str | None = None,
    ) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._producer = producer
        self._schema = schema
        self._settings = settings
        self._listen_dsn = listen_dsn
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.last_run_at = utcnow()

    def wake(self) -> None:
        """Claim the next batch now rather than at the poll interval (what a NOTIFY does)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the relay to finish its current batch and return."""
        self._stopping.set()
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publish one batch of pending rows; return how many were published."""
        async with self._sessions() as session, session.begin():
            claimed = await session.execute(_CLAIM, {"limit": self._settings.batch_size})
            # RETURNING gives no order: publish in the order the rows were written.
            rows = sorted(claimed.all(), key=lambda row: row.id)
            if not rows:
                LAG.labels(self._schema).set(0)
                return 0
            LAG.labels(self._schema).set((utcnow() - rows[0].created_at).total_seconds())
            await self._send(rows)
        for topic, count in collections.Counter(row.topic for row in rows).items():
            PUBLISHED.labels(topic).inc(count)
        return len(rows)

    async def _send(self, rows: Sequence[sa.Row[Any, Any, Any, Any, Any, Any]]) -> None:
        # One batch per partition, not one send() per row: send() costs a future, a partition
        # lookup and an accumulator call per message, which was most of the relay's CPU.
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        futures: list[asyncio.Future[Any]] = []
        partitions: dict[str, list[int]] = {}
        for n, row in enumerate(rows, 1):
            if n % _YIELD_EVERY == 0:
                # Let the requests sharing the event loop in: a big batch takes milliseconds.
                await asyncio.sleep(0)
            if row.topic not in partitions:
                partitions[row.topic] = sorted(await self._producer.partitions_for(row.topic))
            target = (row.topic, partition_of(row.key, partitions[row.topic]))
            message = {
                "key": row.key,
                "value": row.value,
                "timestamp": None,
                "headers": [(k, str(v).encode()) for k, v in row.headers.items()],
            }
            batch = open_batches.get(target)
            if batch is not None and batch.append(**message) is not None:
                continue
            if batch is not None:
                # Full: submit it (rows of a partition keep their order) and start the next.
                futures.append(await self._submit(batch, target))
            batch = open_batches[target] = self._producer.create_batch()
            if batch.append(**message) is None:
                raise ValueError(f"outbox row {row.id} is larger than a producer batch")
        for target, batch in open_batches.items():
            futures.append(await self._submit(batch, target))
        # Every batch must be acknowledged (acks=all) before the rows count as published.
        await asyncio.gather(*futures)

    async def _submit(self, batch: BatchBuilder, target: tuple[str, int]) -> asyncio.Future[Any]:
        topic, partition = target
        future: asyncio.Future[Any] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return future

    async def run(self) -> None:
        """Publish until stopped, woken by NOTIFY or the poll interval."""
        listener = await self._listen()
        last_purge = utcnow()
        try:
            while not self._stopping.is_set():
                self.last_run_at = utcnow()
                # Cleared before the batch is claimed, not after: a NOTIFY for a commit the claim
                # missed must still wake the next round, or that row waits a poll interval.
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                except (KafkaError, OSError, sa.exc.DBAPIError) as exc:
                    # Rows stay pending and are retried: nothing is lost, progress waits.
                    log.warning("outbox publish failed; retrying", error=repr(exc))
                    await asyncio.sleep(self._settings.poll_seconds)
                    continue
                if published >= self._settings.batch_size:
                    continue  # more are waiting
                if utcnow() - last_purge > timedelta(minutes=10):
                    await self._purge()
                    last_purge = utcnow()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
                    if self._settings.linger_seconds and not self._stopping.is_set():
                        await asyncio.sleep(self._settings.linger_seconds)
            # Drain what committed before the stop.
            while await self.publish_batch():
                pass
        finally:
            if listener is not None:
                await listener.close()

    async def _purge(self) -> None:
        # Earlier versions marked rows published instead of deleting them: purge those.
        cutoff = utcnow() - timedelta(hours=self._settings.keep_published_hours)
        async with self._sessions() as session, session.begin():
            purged = await purge_published(session, older_than=cutoff)
        if purged:
            log.info("outbox purged", rows=purged)

    async def _listen(self) -> Any:
        if self._listen_dsn is None:
            return None
        conn = await asyncpg.connect(self._listen_dsn)
        await conn.add_listener(notify_channel(self._schema), lambda *_: self.wake())
        return conn
