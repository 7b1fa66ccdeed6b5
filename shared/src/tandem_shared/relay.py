"""The outbox relay: publishes committed outbox rows, moving them to the retained ones as it goes.

One statement claims a batch (FOR UPDATE SKIP LOCKED, so replicas share the work), deletes it from
the outbox and appends it to `outbox_published`; the transaction commits only once Kafka
acknowledged every row, so a relay that dies or fails before then rolls the move back and the rows
are published again: consumers' inboxes absorb the duplicates. Moving, not marking, is what keeps
up with ingest's rate: an UPDATE wrote a new version of every row (its value, its index entries).
NOTIFY only wakes the relay early, the poll interval is what guarantees progress.

The same transaction records, per partition, the offset of the last batch Kafka acknowledged
(its first record's: the embedded broker's ListOffsets answers that + 1, not the log's end, so the
check is the same on both brokers). On start and every `broker_check_seconds`, the relay compares
those with the broker's end offsets: a broker that ends at or before them lost data (the embedded
broker restarted, a topic was recreated), and the retained rows of those topics go back into the
outbox, in their original order. A topic the broker does not list counts as lost, and the check
refreshes the producer's metadata: the embedded broker acknowledges records sent to a topic it
does not list (a producer's partitions cached from before its restart), so without the refresh a
republish could land there and every later check, on any replica, would put it back again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.structs import RecordMetadata, TopicPartition
from murmurhash2 import murmurhash2
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tandem_shared.db import Statement, fetch
from tandem_shared.envelope import utcnow
from tandem_shared.outbox import (
    REALTIME_PENDING,
    notify_channel,
    outbox,
    outbox_offsets,
    outbox_published,
    purge_published,
)
from tandem_shared.settings import OutboxSettings

log = structlog.get_logger(__name__)


# Rows added to producer batches between two yields to the event loop.
_YIELD_EVERY = 250

# The Java client's murmur2 seed: the same key lands where every Kafka client would put it.
_MURMUR2_SEED = 0x9747B28C


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the producer's default partitioner picks for a key, in C, not pure Python."""
    return partitions[(murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % len(partitions)]


_ROW = ("id", "event_id", "topic", "key", "value", "headers", "created_at")


def _claims(pending: sa.ColumnElement[bool] | sa.TextClause) -> tuple[Statement, Statement]:
    """The oldest `pending` rows nobody else holds, claimed and deleted in one statement; and
    the same appending them to the retained ones (one round trip, no UPDATE)."""
    delete = sa.delete(outbox).where(
        outbox.c.id.in_(
            sa.select(outbox.c.id)
            .where(pending)
            .order_by(outbox.c.id)
            .limit(sa.bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    claim = delete.returning(*(outbox.c[name] for name in _ROW))
    claimed = claim.cte("claimed")
    keep = sa.select(claimed).add_cte(
        sa.insert(outbox_published).from_select(_ROW, sa.select(claimed)).cte("kept")
    )
    # Run on the asyncpg connection (a round trip per batch, or two: the lanes' claims).
    return Statement.compiled(claim), Statement.compiled(keep)


# Rows marked published by earlier versions stay put.
_CLAIM, _CLAIM_AND_KEEP = _claims(outbox.c.published_at.is_(None))
# Real-time lane first: a meeting request never waits behind a bulk backlog's rows.
_CLAIM_REALTIME, _CLAIM_REALTIME_AND_KEEP = _claims(sa.text(REALTIME_PENDING))
# Retained rows of lost topics back into the outbox under their original ids: the claim's order
# by id puts them before anything written since, so each key's events keep their order.
_moved = (
    sa.delete(outbox_published)
    .where(outbox_published.c.topic.in_(sa.bindparam("topics", expanding=True)))
    .returning(*(outbox_published.c[name] for name in _ROW))
    .cte("moved")
)
_requeued = (
    sa.insert(outbox)
    .from_select(_ROW, sa.select(_moved).order_by(_moved.c.id))
    .returning(outbox.c.topic)
    .cte("requeued")
)
_REQUEUE = sa.select(_requeued.c.topic, sa.func.count()).group_by(_requeued.c.topic)

PUBLISHED = Counter("tandem_events_published_total", "Events published to Kafka", ["topic"])
REPUBLISHED = Counter(
    "tandem_outbox_republished_total",
    "Published events put back into the outbox because the broker lost them",
    ["schema", "topic"],
)
LAG = Gauge(
    "tandem_outbox_lag_seconds",
    "How long the oldest row of the relay's last batch waited after its commit (0: none waiting)",
    ["schema"],
)


# GREATEST, not the new value: a new broker's low offsets must not hide what the old one had.
_RECORD_OFFSETS = Statement.of(
    'INSERT INTO outbox_offsets (topic, partition, "offset") '
    "SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]), "
    "CAST(:offsets AS bigint[])) "
    "ON CONFLICT (topic, partition) DO UPDATE "
    'SET "offset" = GREATEST(outbox_offsets."offset", excluded."offset"), updated_at = now()'
)


async def _record_offsets(session: AsyncSession, acknowledged: dict[tuple[str, int], int]) -> None:
    """Raise each partition's recorded offset to what the broker just acknowledged."""
    if not acknowledged:
        return
    # Sorted: replicas lock the same rows in the same order and cannot deadlock.
    ordered = sorted(acknowledged.items())
    await fetch(
        session,
        _RECORD_OFFSETS,
        {
            "topics": [topic for (topic, _), _ in ordered],
            "partitions": [partition for (_, partition), _ in ordered],
            "offsets": [offset for _, offset in ordered],
        },
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
        self._retain = settings.keep_published_hours > 0
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
        realtime, any_lane = (
            (_CLAIM_REALTIME_AND_KEEP, _CLAIM_AND_KEEP)
            if self._retain
            else (_CLAIM_REALTIME, _CLAIM)
        )
        limit = self._settings.batch_size
        async with self._sessions() as session, session.begin():
            claimed = await fetch(session, realtime, {"limit": limit})
            if len(claimed) < limit:
                # Each topic is in one lane, so a topic's rows still leave in order.
                claimed += await fetch(session, any_lane, {"limit": limit - len(claimed)})
            # RETURNING gives no order: publish in the order the rows were written.
            rows = sorted(claimed, key=lambda row: row["id"])
            if not rows:
                LAG.labels(self._schema).set(0)
                return 0
            LAG.labels(self._schema).set((utcnow() - rows[0]["created_at"]).total_seconds())
            acknowledged = await self._send(rows)
            if self._retain:
                await _record_offsets(session, acknowledged)
        for topic, count in collections.Counter(row["topic"] for row in rows).items():
            PUBLISHED.labels(topic).inc(count)
        return len(rows)

    async def check_broker(self) -> int:
        """Put back the retained rows of topics the broker lost; return how many rows."""
        if not self._retain:
            return 0
        # Every check, even with nothing recorded (another replica just put a loss back): the
        # producer forgets topics the broker no longer lists, and a republish waits for the topic
        # (or has the broker create it) rather than land where the broker never lists it.
        await self._producer.client.force_metadata_update()
        async with self._sessions() as session, session.begin():
            # The row locks make one replica's check wait for another's: a loss is handled once,
            # and a replica's acknowledgements of the new broker wait until the reset is done.
            recorded = (
                await session.execute(
                    sa.select(
                        outbox_offsets.c.topic, outbox_offsets.c.partition, outbox_offsets.c.offset
                    )
                    .order_by(outbox_offsets.c.topic, outbox_offsets.c.partition)
                    .with_for_update()
                )
            ).all()
            if not recorded:
                return 0
            ends = await self._end_offsets({row.topic for row in recorded})
            lost = {
                row.topic
                for row in recorded
                if ends.get((row.topic, row.partition), 0) <= row.offset
            }
            if not lost:
                return 0
            moved = await session.execute(_REQUEUE, {"topics": sorted(lost)})
            requeued: dict[str, int] = {topic: count for topic, count in moved}
            await session.execute(sa.delete(outbox_offsets).where(outbox_offsets.c.topic.in_(lost)))
        log.warning(
            "broker lost published events; republishing the retained ones",
            schema=self._schema,
            topics=sorted(lost),
            events=requeued,
        )
        for topic, count in requeued.items():
            REPUBLISHED.labels(self._schema, topic).inc(count)
        return sum(requeued.values())

    async def _end_offsets(self, topics: set[str]) -> dict[tuple[str, int], int]:
        """The broker's end offset of every partition of `topics` it lists (ListOffsets, latest):
        a topic it does not list counts as lost, as acknowledgements never come from one."""
        client = self._producer.client
        metadata = await client.fetch_all_metadata()
        by_node: dict[int, dict[str, list[tuple[int, int]]]] = {}
        for topic in sorted(topics & metadata.topics()):
            for partition in metadata.partitions_for_topic(topic) or ():
                node = metadata.leader_for_partition(TopicPartition(topic, partition))
                if node is None or node < 0:
                    raise KafkaError(f"no leader for {topic}/{partition}")
                by_node.setdefault(node, {}).setdefault(topic, []).append((partition, -1))
        ends: dict[tuple[str, int], int] = {}
        for node, wanted in by_node.items():
            response = await client.send(node, OffsetRequest(-1, 0, list(wanted.items())))
            for topic, partitions in response.topics:
                for partition, error_code, *_, offset in partitions:
                    if error_code:
                        raise KafkaError(f"ListOffsets {topic}/{partition}: error {error_code}")
                    ends[(topic, partition)] = offset
        return ends

    async def _send(self, rows: Sequence[asyncpg.Record]) -> dict[tuple[str, int], int]:
        # One batch per partition, not one send() per row: send() costs a future, a partition
        # lookup and an accumulator call per message, which was most of the relay's CPU.
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        futures: list[asyncio.Future[RecordMetadata]] = []
        partitions: dict[str, list[int]] = {}
        for n, row in enumerate(rows, 1):
            if n % _YIELD_EVERY == 0:
                # Let the requests sharing the event loop in: a big batch takes milliseconds.
                await asyncio.sleep(0)
            topic, key = row["topic"], row["key"]
            if topic not in partitions:
                partitions[topic] = sorted(await self._producer.partitions_for(topic))
            target = (topic, partition_of(key, partitions[topic]))
            message = {
                "key": key,
                "value": row["value"],
                "timestamp": None,
                "headers": [(k, str(v).encode()) for k, v in row["headers"].items()],
            }
            batch = open_batches.get(target)
            if batch is not None and batch.append(**message) is not None:
                continue
            if batch is not None:
                # Full: submit it (rows of a partition keep their order) and start the next.
                futures.append(await self._submit(batch, target))
            batch = open_batches[target] = self._producer.create_batch()
            if batch.append(**message) is None:
                raise ValueError(f"outbox row {row['id']} is larger than a producer batch")
        for target, batch in open_batches.items():
            futures.append(await self._submit(batch, target))
        # Every batch must be acknowledged (acks=all) before the rows count as published.
        # A batch's acknowledgement carries the offset of its first record: that is what is
        # recorded, as the embedded broker's end offset is its last batch's first offset + 1.
        acknowledged: dict[tuple[str, int], int] = {}
        for sent in await asyncio.gather(*futures):
            target = (sent.topic, sent.partition)
            acknowledged[target] = max(sent.offset, acknowledged.get(target, -1))
        return acknowledged

    async def _submit(
        self, batch: BatchBuilder, target: tuple[str, int]
    ) -> asyncio.Future[RecordMetadata]:
        topic, partition = target
        future: asyncio.Future[RecordMetadata] = await self._producer.send_batch(
            batch, topic, partition=partition
        )
        return future

    async def run(self) -> None:
        """Publish until stopped, woken by NOTIFY or the poll interval."""
        listener = await self._listen()
        last_purge = utcnow()
        checked_at: float | None = None
        every = self._settings.broker_check_seconds
        try:
            while not self._stopping.is_set():
                self.last_run_at = utcnow()
                # Cleared before the batch is claimed, not after: a NOTIFY for a commit the claim
                # missed must still wake the next round, or that row waits a poll interval.
                self._wake.clear()
                try:
                    # The first check comes before the first batch: what a fresh broker lacks
                    # goes back into the outbox ahead of anything new.
                    if checked_at is None or time.monotonic() - checked_at >= every:
                        await self.check_broker()
                        checked_at = time.monotonic()
                    published = await self.publish_batch()
                    if published < self._settings.batch_size and (
                        utcnow() - last_purge > timedelta(minutes=10)
                    ):
                        await self._purge()
                        last_purge = utcnow()
                except (KafkaError, OSError, sa.exc.DBAPIError) as exc:
                    # Rows stay pending and are retried: nothing is lost, progress waits.
                    log.warning("outbox relay round failed; retrying", error=repr(exc))
                    await asyncio.sleep(self._settings.poll_seconds)
                    continue
                if published >= self._settings.batch_size:
                    continue  # more are waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), min(self._settings.poll_seconds, every)
                    )
                    if self._settings.linger_seconds and not self._stopping.is_set():
                        await asyncio.sleep(self._settings.linger_seconds)
            # Drain what committed before the stop.
            while await self.publish_batch():
                pass
        finally:
            if listener is not None:
                await listener.close()

    async def _purge(self) -> None:
        # Retained rows past their time, and rows earlier versions marked published.
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
