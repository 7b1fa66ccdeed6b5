"""The outbox relay against the real broker and database."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer, ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine

from kafka_tools import create_topic, read_all
from tandem_shared import topics
from tandem_shared.consumer import ConsumerLoop, UnitOfWork
from tandem_shared.db import create_engine, session_factory
from tandem_shared.envelope import Envelope
from tandem_shared.kafka import create_producer
from tandem_shared.local.embedded import Broker, start_broker
from tandem_shared.outbox import (
    REALTIME_PENDING,
    add_to_outbox,
    outbox,
    outbox_offsets,
    outbox_published,
    outbox_row,
    retention_metadata,
    runtime_metadata,
)
from tandem_shared.relay import LAG, REPUBLISHED, OutboxRelay, partition_of
from tandem_shared.settings import KafkaSettings, OutboxSettings


@pytest.fixture
async def engine(infra, unique) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    schema = f"ob_{unique}"
    engine = create_engine(infra.settings().database, schema=schema)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(sa.text(f'SET search_path TO "{schema}"'))
        await conn.run_sync(runtime_metadata.create_all)
        await conn.run_sync(retention_metadata.create_all)
        await conn.execute(sa.text("CREATE TABLE effects (event_id text NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    p = create_producer(kafka_settings, client_id="relay-test")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def new_topic(infra, unique) -> Callable[..., Awaitable[str]]:  # type: ignore[no-untyped-def]
    """Create the topic `t-<name>-<unique>` and return its name."""

    async def create(name: str, partitions: int = 3) -> str:
        topic = f"t-{name}-{unique}"
        await create_topic(infra.bootstrap_servers, topic, partitions=partitions)
        return topic

    return create


@pytest.fixture
def relay_of(engine, producer) -> Callable[..., OutboxRelay]:  # type: ignore[no-untyped-def]
    """Build a relay (of `kind`) over the test's schema and producer, with these settings."""

    def build(kind: type[OutboxRelay] = OutboxRelay, *, schema: str = "x", **settings: Any) -> Any:
        return kind(
            engine=engine, producer=producer, schema=schema, settings=OutboxSettings(**settings)
        )

    return build


async def commit_rows(engine: AsyncEngine, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Commit outbox rows publishing `envelopes` on `topic`, in one transaction."""
    async with session_factory(engine)() as s, s.begin():
        await add_to_outbox(s, [outbox_row(topic, e) for e in envelopes])


class DiesBeforeCommitting(OutboxRelay):
    """Publishes, then dies before its transaction deletes the rows for good."""

    async def _send(self, rows: Sequence[Any]) -> None:
        await super()._send(rows)
        raise ConnectionResetError("relay killed")


async def test_relay_that_dies_after_publishing_republishes_and_inbox_absorbs_duplicates(
    infra,
    unique,
    engine,
    producer,
    kafka_settings,
    new_topic,
    relay_of,  # type: ignore[no-untyped-def]
) -> None:
    topic = await new_topic("outbox")
    envelopes = [
        Envelope(id=f"{unique}-{i}", type="test", source="/t", subject=f"a{i}.com")
        for i in range(20)
    ]
    await commit_rows(engine, topic, envelopes)

    with pytest.raises(ConnectionResetError):
        await relay_of(DiesBeforeCommitting, batch_size=100).publish_batch()
    async with engine.connect() as conn:
        pending = await conn.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    assert pending == 20  # the delete rolled back: the rows are still owed

    relay = relay_of(batch_size=100)
    assert await relay.publish_batch() == 20
    assert await relay.publish_batch() == 0
    on_topic = await read_all(infra.bootstrap_servers, topic, expect=40)
    assert len(on_topic) == 40  # every event twice: published, then republished

    async def effect(envelope: Envelope, uow: UnitOfWork) -> None:
        await uow.session.execute(sa.text("INSERT INTO effects VALUES (:id)"), {"id": envelope.id})

    loop = ConsumerLoop(
        group=f"g-ob-{unique}",
        topics=[topic],
        handler=effect,
        sessions=session_factory(engine),
        settings=kafka_settings,
    )
    task = asyncio.create_task(loop.run())
    async with asyncio.timeout(30):
        while not loop.caught_up():
            await asyncio.sleep(0.05)
    loop.stop()
    await task
    async with engine.connect() as conn:
        rows = list((await conn.execute(sa.text("SELECT event_id FROM effects"))).scalars())
    assert sorted(rows) == sorted(e.id for e in envelopes)


async def test_relay_run_publishes_new_rows_and_drains_on_stop(
    infra,
    unique,
    engine,
    new_topic,
    relay_of,  # type: ignore[no-untyped-def]
) -> None:
    topic = await new_topic("run")
    relay = relay_of(poll_seconds=0.1)
    task = asyncio.create_task(relay.run())
    for i in range(3):
        env = Envelope(id=f"{unique}-{i}", type="test", source="/t", subject="a.com")
        await commit_rows(engine, topic, [env])
    relay.stop()
    await task
    records = await read_all(infra.bootstrap_servers, topic, expect=3)
    assert sorted(Envelope.from_bytes(r.value).id for r in records) == [
        f"{unique}-{i}" for i in range(3)
    ]


async def test_relay_batches_keep_each_keys_partition_and_order(
    infra,
    unique,
    engine,
    producer,
    new_topic,
    relay_of,  # type: ignore[no-untyped-def]
) -> None:
    # 2 KB rows: a key's 40 rows span several producer batches, which must go out in order.
    topic = await new_topic("order", partitions=3)
    keys = [f"k{n}.example.com" for n in range(5)]
    envelopes = [
        Envelope(
            id=f"{unique}-{i:03d}",
            type="test",
            source="/t",
            subject=keys[i % 5],
            data={"pad": "x" * 2000},
        )
        for i in range(200)
    ]
    await commit_rows(engine, topic, envelopes)
    assert await relay_of(batch_size=500).publish_batch() == 200

    records = await read_all(infra.bootstrap_servers, topic, expect=200)
    by_key: dict[bytes, list[tuple[int, int, str]]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(
            (r.partition, r.offset, Envelope.from_bytes(r.value).id)
        )
    partitions = sorted(await producer.partitions_for(topic))
    assert len({p for rows in by_key.values() for p, _, _ in rows}) > 1  # spread, not one partition
    for key, rows in by_key.items():
        assert {p for p, _, _ in rows} == {partition_of(key, partitions)}
        in_offset_order = [event_id for _, _, event_id in sorted(rows)]
        assert in_offset_order == sorted(in_offset_order)  # ids were written in order
        assert len(rows) == 40


async def test_rows_marked_published_by_an_earlier_version_are_not_published_again(
    unique,
    engine,
    relay_of,  # type: ignore[no-untyped-def]
) -> None:
    row = outbox_row(f"t-marked-{unique}", Envelope(type="test", source="/t", subject="a.com"))
    async with session_factory(engine)() as s, s.begin():
        await s.execute(sa.insert(outbox).values(**row, published_at=sa.func.now()))
    assert await relay_of().publish_batch() == 0
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(outbox)) == 1


class PausesWhileSending(OutboxRelay):
    """Holds its first batch before sending it, until the test resumes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sending, self.resume = asyncio.Event(), asyncio.Event()

    async def _send(self, rows: Sequence[Any]) -> None:
        self.sending.set()
        await self.resume.wait()
        await super()._send(rows)


async def test_a_wake_up_during_a_batch_is_not_lost(
    infra,
    unique,
    engine,
    new_topic,
    relay_of,  # type: ignore[no-untyped-def]
) -> None:
    topic = await new_topic("wake")
    # A poll interval far beyond the test: only wake-ups can publish in time.
    relay = relay_of(PausesWhileSending, poll_seconds=120)
    task = asyncio.create_task(relay.run())

    async def commit(name: str) -> None:
        env = Envelope(id=f"{unique}-{name}", type="test", source="/t", subject="a.com")
        await commit_rows(engine, topic, [env])
        relay.wake()  # as the commit's NOTIFY would

    await commit("first")
    await asyncio.wait_for(relay.sending.wait(), timeout=10)
    await commit("second")  # its wake-up arrives while the first batch is on its way
    relay.resume.set()
    records = await read_all(infra.bootstrap_servers, topic, expect=2, timeout=10)
    relay.stop()
    await task
    assert sorted(Envelope.from_bytes(r.value).id for r in records) == [
        f"{unique}-first",
        f"{unique}-second",
    ]


async def test_the_lag_gauge_says_how_long_the_oldest_row_waited(
    unique,
    engine,
    new_topic,
    relay_of,  # type: ignore[no-untyped-def]
) -> None:
    topic = await new_topic("lag")
    schema = f"lag-{unique}"
    old = outbox_row(topic, Envelope(type="test", source="/t", subject="a.com"))
    async with session_factory(engine)() as s, s.begin():
        waited = sa.func.now() - sa.text("interval '42 seconds'")
        await s.execute(sa.insert(outbox).values(**old, created_at=waited))
        await add_to_outbox(s, [outbox_row(topic, Envelope(type="test", source="/t"))])
    relay = relay_of(schema=schema)
    assert await relay.publish_batch() == 2
    assert 42 <= LAG.labels(schema)._value.get() < 52
    assert await relay.publish_batch() == 0
    assert LAG.labels(schema)._value.get() == 0


async def test_published_rows_are_kept_with_the_offsets_the_broker_acknowledged(
    infra: Any,
    unique: str,
    engine: AsyncEngine,
    new_topic: Callable[..., Awaitable[str]],
    relay_of: Callable[..., OutboxRelay],
) -> None:
    topic = await new_topic("kept", partitions=3)
    envelopes = [
        Envelope(id=f"{unique}-{i}", type="test", source="/t", subject=f"a{i}.com")
        for i in range(30)
    ]
    await commit_rows(engine, topic, envelopes)
    relay = relay_of(batch_size=12)
    while await relay.publish_batch():
        pass

    records = await read_all(infra.bootstrap_servers, topic, expect=30)
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(outbox)) == 0
        kept = (await conn.execute(sa.select(outbox_published.c.event_id))).scalars().all()
        acked = await conn.execute(sa.select(outbox_offsets.c.partition, outbox_offsets.c.offset))
        offsets = {partition: offset for partition, offset in acked}
    assert sorted(kept) == sorted(e.id for e in envelopes)
    # Per partition, the offset of the first record of the last relay batch that reached it.
    last_batch: dict[int, tuple[int, int]] = {}
    for r in records:
        batch = int(Envelope.from_bytes(r.value).id.rsplit("-", 1)[1]) // 12
        last_batch[r.partition] = max(last_batch.get(r.partition, (-1, 0)), (batch, -r.offset))
    assert offsets == {partition: -offset for partition, (_, offset) in last_batch.items()}


async def test_without_retention_published_rows_are_only_deleted(
    infra: Any,
    unique: str,
    engine: AsyncEngine,
    new_topic: Callable[..., Awaitable[str]],
    relay_of: Callable[..., OutboxRelay],
) -> None:
    topic = await new_topic("unkept")
    await commit_rows(engine, topic, [Envelope(type="test", source="/t", subject="a.com")])
    relay = relay_of(keep_published_hours=0)
    assert await relay.publish_batch() == 1
    assert await relay.check_broker() == 0
    async with engine.connect() as conn:
        for table in (outbox, outbox_published, outbox_offsets):
            assert await conn.scalar(sa.select(sa.func.count()).select_from(table)) == 0


async def test_the_purge_drops_retained_rows_older_than_the_retention(
    unique: str,
    engine: AsyncEngine,
    new_topic: Callable[..., Awaitable[str]],
    relay_of: Callable[..., OutboxRelay],
) -> None:
    topic = await new_topic("purge")
    envelopes = [Envelope(id=f"{unique}-{i}", type="test", source="/t") for i in range(2)]
    await commit_rows(engine, topic, envelopes)
    relay = relay_of(keep_published_hours=1)
    assert await relay.publish_batch() == 2
    async with session_factory(engine)() as s, s.begin():
        await s.execute(
            sa.update(outbox_published)
            .where(outbox_published.c.event_id == envelopes[0].id)
            .values(published_at=sa.func.now() - sa.text("interval '61 minutes'"))
        )
    await relay._purge()
    async with engine.connect() as conn:
        kept = (await conn.execute(sa.select(outbox_published.c.event_id))).scalars().all()
    assert kept == [envelopes[1].id]


def _ids(records: list[ConsumerRecord[bytes, bytes]]) -> set[str]:
    return {Envelope.from_bytes(r.value).id for r in records}


async def test_a_relay_republishes_what_a_restarted_broker_lost_once_across_replicas(
    unique: str,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    # A broker of this test's own: the session's broker must keep its topics.
    broker: Broker = start_broker(log_path=tmp_path / "broker.log")
    topic = f"t-lost-{unique}"
    schema = f"lost-{unique}"
    await create_topic(broker.bootstrap_servers, topic, partitions=3)
    producers = [
        create_producer(KafkaSettings(bootstrap_servers=broker.bootstrap_servers), client_id=n)
        for n in ("a", "b")
    ]
    settings = OutboxSettings(poll_seconds=0.1, broker_check_seconds=0.3)
    # Two replicas of one service's relay: the loss must be put back once, not once each.
    relays = [
        OutboxRelay(engine=engine, producer=p, schema=schema, settings=settings) for p in producers
    ]
    keys = [f"k{n}.example.com" for n in range(6)]

    def events(first: int, count: int) -> list[Envelope]:
        return [
            Envelope(id=f"{unique}-{i:03d}", type="test", source="/t", subject=keys[i % 6])
            for i in range(first, first + count)
        ]

    tasks: list[asyncio.Task[None]] = []
    try:
        for p in producers:
            await p.start()
        tasks = [asyncio.create_task(r.run()) for r in relays]
        await commit_rows(engine, topic, events(0, 60))
        assert len(await read_all(broker.bootstrap_servers, topic, expect=60)) == 60
        before = REPUBLISHED.labels(schema, topic)._value.get()

        # The embedded broker restarts: every topic and record is gone.
        broker.stop()
        broker = start_broker(port=broker.port, log_path=tmp_path / "broker.log")
        await commit_rows(engine, topic, events(60, 12))  # written while the topic is missing
        await asyncio.sleep(1)  # the relays find no topic yet: `tandem-local up` creates it
        await create_topic(broker.bootstrap_servers, topic, partitions=3)

        records = await read_all(broker.bootstrap_servers, topic, expect=72, timeout=30)
        # A window row sent twice (below) may fill the count before the last republished row.
        deadline = time.monotonic() + 10
        while len(_ids(records)) < 72 and time.monotonic() < deadline:
            more = len(records) + 72 - len(_ids(records))
            records = await read_all(broker.bootstrap_servers, topic, expect=more, timeout=2)
    finally:
        for r in relays:
            r.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in producers:
            await p.stop()
        broker.stop()

    ids = [Envelope.from_bytes(r.value).id for r in records]
    lost_ids, window_ids = {e.id for e in events(0, 60)}, {e.id for e in events(60, 12)}
    assert set(ids) == lost_ids | window_ids  # every event arrives
    counts = Counter(ids)
    # What the broker lost is put back once, not once per replica.
    assert all(counts[i] == 1 for i in lost_ids), counts
    # Rows relayed between the restart and the relays' next check may go out once more when the
    # loss is found (docs/runbook.md, "one window remains"); never more.
    assert all(counts[i] <= 2 for i in window_ids), counts
    assert REPUBLISHED.labels(schema, topic)._value.get() - before == 60
    # Each key's events in their original order within what was lost and within what was new;
    # the window's rows may come ahead of the republished ones (the same runbook paragraph).
    by_key: dict[bytes, list[tuple[int, str]]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append((r.offset, Envelope.from_bytes(r.value).id))
    for rows in by_key.values():
        in_offset_order = list(dict.fromkeys(event_id for _, event_id in sorted(rows)))
        for part in (lost_ids, window_ids):
            kept_order = [i for i in in_offset_order if i in part]
            assert kept_order == sorted(kept_order)
    async with engine.connect() as conn:
        kept = await conn.scalar(sa.select(sa.func.count()).select_from(outbox_published))
    assert kept == 72  # and kept again, for the next loss


async def test_a_republish_after_a_broker_restart_is_not_put_back_again_by_another_replica(
    unique: str,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    # Step by step, no timing: one replica finds the loss and republishes, the other then checks.
    broker: Broker = start_broker(log_path=tmp_path / "broker.log")
    topic = f"t-again-{unique}"
    await create_topic(broker.bootstrap_servers, topic, partitions=3)
    producers = [
        create_producer(KafkaSettings(bootstrap_servers=broker.bootstrap_servers), client_id=n)
        for n in ("a", "b")
    ]
    first, second = (
        OutboxRelay(engine=engine, producer=p, schema=f"again-{unique}", settings=OutboxSettings())
        for p in producers
    )
    envelopes = [
        Envelope(id=f"{unique}-{i:02d}", type="test", source="/t", subject=f"k{i % 6}.example.com")
        for i in range(30)
    ]
    try:
        for p in producers:
            await p.start()
        await commit_rows(engine, topic, envelopes[:20])
        assert await first.publish_batch() == 20
        assert await second.publish_batch() == 0  # both producers now cache the topic

        # The embedded broker restarts: the topic and its records are gone, and not listed.
        broker.stop()
        broker = start_broker(port=broker.port, log_path=tmp_path / "broker.log")
        await commit_rows(engine, topic, envelopes[20:])
        assert await first.check_broker() == 20
        # Nothing recorded is left to compare, but the second replica's producer forgets the
        # topic too: it publishes where the broker lists what it acknowledges.
        assert await second.check_broker() == 0
        assert await second.publish_batch() == 30
        assert await first.check_broker() == 0  # the republished records are not lost again
        assert await second.check_broker() == 0
        records = await read_all(broker.bootstrap_servers, topic, expect=30)
    finally:
        for p in producers:
            await p.stop()
        broker.stop()
    assert sorted(Envelope.from_bytes(r.value).id for r in records) == [e.id for e in envelopes]


async def test_real_time_rows_leave_before_a_bulk_backlog(
    engine, relay_of, new_topic, unique, infra
) -> None:  # type: ignore[no-untyped-def]
    realtime = await new_topic("realtime", partitions=1)
    backlog = [
        Envelope(id=f"{unique}-row-{i}", type="test", source="/t", subject=f"b{i}.com")
        for i in range(3000)
    ]
    await commit_rows(engine, topics.INTENT, backlog)  # a Bombora file's rows, written first
    meeting = Envelope(id=f"{unique}-meeting", type="test", source="/t", subject="acme.com")
    await commit_rows(engine, realtime, [meeting])
    async with engine.begin() as conn:
        # What the retention migration creates; the claim must find real-time rows through it.
        await conn.execute(
            sa.text(f"CREATE INDEX outbox_pending_realtime ON outbox (id) WHERE {REALTIME_PENDING}")
        )
        await conn.execute(sa.text("ANALYZE outbox"))
        plan = (
            await conn.execute(
                sa.text(
                    f"EXPLAIN SELECT id FROM outbox WHERE {REALTIME_PENDING} ORDER BY id LIMIT 1"
                )
            )
        ).scalars()
        assert "outbox_pending_realtime" in "\n".join(plan)

    # One row a batch: the first the relay claims is the meeting request, not the backlog's head.
    assert await relay_of(batch_size=1).publish_batch() == 1
    published = await read_all(infra.bootstrap_servers, realtime, expect=1)
    assert [Envelope.from_bytes(r.value).id for r in published] == [meeting.id]
    async with engine.connect() as conn:
        pending = await conn.scalar(sa.select(sa.func.count()).select_from(outbox))
    assert pending == 3000
