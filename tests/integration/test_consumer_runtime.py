"""The consumer runtime against the real broker and database: DLQ, crash recovery, stop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from kafka_tools import create_topic, produce, produce_envelopes, read_all
from tandem_shared.consumer import ConsumerLoop, Handler, UnitOfWork
from tandem_shared.db import create_engine, session_factory
from tandem_shared.dlq import list_dead_letters, redrive
from tandem_shared.envelope import Envelope
from tandem_shared.kafka import create_producer
from tandem_shared.outbox import outbox_published, retention_metadata, runtime_metadata
from tandem_shared.relay import OutboxRelay
from tandem_shared.service import Runtime
from tandem_shared.settings import KafkaSettings, OutboxSettings
from tandem_shared.topics import dead_letter_topic

side_effects = sa.Table(
    "side_effects",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),  # not unique: a double effect must show
)


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker  # type: ignore[type-arg]

    async def effects(self) -> list[str]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.select(side_effects.c.event_id))).scalars())

    async def has(self, count: int) -> bool:
        return len(await self.effects()) >= count


@pytest.fixture
async def db(infra, unique, producer) -> AsyncIterator[Db]:  # type: ignore[no-untyped-def]
    schema = f"rt_{unique}"
    engine = create_engine(infra.settings().database, schema=schema)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(sa.text(f'SET search_path TO "{schema}"'))
        await conn.run_sync(runtime_metadata.create_all)
        await conn.run_sync(retention_metadata.create_all)
        await conn.run_sync(side_effects.metadata.create_all)
    # The service's relay: dead letters leave through the outbox.
    relay = OutboxRelay(
        engine=engine, producer=producer, schema=schema, settings=OutboxSettings(poll_seconds=0.05)
    )
    task = asyncio.create_task(relay.run())
    yield Db(engine, session_factory(engine))
    relay.stop()
    await task
    await engine.dispose()


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    p = create_producer(kafka_settings, client_id="test")
    await p.start()
    yield p
    await p.stop()


async def until(check: Callable[[], object], *, timeout: float = 30.0, every: float = 0.05) -> None:
    """Poll `check` (plain or async) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            done = check()
            if inspect.isawaitable(done):
                done = await done
            if done:
                return
            await asyncio.sleep(every)


async def ready(runtime: Runtime) -> bool:
    return await runtime.readiness() == []


@asynccontextmanager
async def running(*loops: ConsumerLoop) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run the loops through the block, then stop them and wait until they return."""
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield tasks
    finally:
        for loop in loops:
            loop.stop()
        await asyncio.gather(*tasks)


@dataclass
class Lane:
    """A test's own topic and consumer group, and the loops that consume it."""

    topic: str
    group: str
    db: Db
    producer: AIOKafkaProducer
    settings: KafkaSettings
    bootstrap: str

    async def publish(self, batch: list[Envelope]) -> None:
        await produce_envelopes(self.bootstrap, self.topic, batch)

    async def dead_letters(self, expect: int) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_all(self.bootstrap, dead_letter_topic(self.group), expect=expect)

    def loop(
        self,
        handler: Handler,
        *,
        cls: type[ConsumerLoop] = ConsumerLoop,
        settings: KafkaSettings | None = None,
        known_types: set[str] | None = None,
    ) -> ConsumerLoop:
        return cls(
            group=self.group,
            topics=[self.topic],
            handler=handler,
            sessions=self.db.sessions,
            settings=settings or self.settings,
            known_types=known_types,
        )


@pytest.fixture
def new_lane(infra, unique, db, producer, kafka_settings):  # type: ignore[no-untyped-def]
    """Create a lane: a fresh topic (and its dead-letter topic) and group for one test."""

    async def make(name: str, *, partitions: int = 3, dead_letters: bool = False) -> Lane:
        topic, group = f"t-{name}-{unique}", f"g-{name}-{unique}"
        await create_topic(infra.bootstrap_servers, topic, partitions=partitions)
        if dead_letters:
            await create_topic(infra.bootstrap_servers, dead_letter_topic(group), partitions=1)
        return Lane(topic, group, db, producer, kafka_settings, infra.bootstrap_servers)

    return make


def events(n: int, prefix: str) -> list[Envelope]:
    return [
        Envelope(
            id=f"{prefix}-{i}",
            type="test.event",
            source="/test",
            subject=f"acct{i % 4}.com",
            data={"n": i},
        )
        for i in range(n)
    ]


async def record_effect(envelope: Envelope, uow: UnitOfWork) -> None:
    await uow.session.execute(sa.insert(side_effects).values(event_id=envelope.id))


async def run_until(loop: ConsumerLoop, db: Db, count: int, timeout: float = 30.0) -> None:
    async with running(loop):
        await until(lambda: db.has(count), timeout=timeout)


async def test_failing_message_goes_to_dead_letter_topic_and_the_rest_are_processed(
    new_lane, unique, db, kafka_settings
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("dlq", partitions=1, dead_letters=True)
    topic = lane.topic
    batch = events(5, unique)
    await lane.publish(batch)

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        if envelope.data["n"] == 2:
            raise ValueError("cannot route account acct2.com")
        await record_effect(envelope, uow)

    loop = lane.loop(handler)
    await run_until(loop, db, 4)

    assert sorted(await db.effects()) == sorted(e.id for e in batch if e.data["n"] != 2)
    dead = await lane.dead_letters(expect=1)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert Envelope.from_bytes(dead[0].value).id == f"{unique}-2"
    assert b"cannot route account acct2.com" in headers["dlq.reason"]
    assert headers["dlq.topic"] == topic.encode()
    assert headers["dlq.attempts"] == str(kafka_settings.max_attempts).encode()


async def test_a_write_deferred_to_the_commit_that_fails_dead_letters_its_message_alone(
    new_lane, unique, db
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("deferred", partitions=1, dead_letters=True)
    batch = events(5, unique)
    await lane.publish(batch)

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        # The batch's writes go in at its end: message 2's breaks a NOT NULL constraint there.
        event_id = None if envelope.data["n"] == 2 else envelope.id

        async def write() -> None:
            await uow.session.execute(sa.insert(side_effects).values(event_id=event_id))

        uow.before_commit(write)

    loop = lane.loop(handler)
    await run_until(loop, db, 4)

    [dead] = await lane.dead_letters(expect=1)
    assert Envelope.from_bytes(dead.value).id == f"{unique}-2"
    assert sorted(await db.effects()) == sorted(e.id for e in batch if e.data["n"] != 2)


async def test_undecodable_message_is_dead_lettered_without_retries(new_lane, unique, db) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("poison", partitions=1, dead_letters=True)
    good = events(1, unique)[0]
    await produce(lane.bootstrap, lane.topic, [(b"k", b"{not json"), (good.key, good.to_bytes())])
    loop = lane.loop(record_effect)
    await run_until(loop, db, 1)
    dead = await lane.dead_letters(expect=1)
    assert [r.value for r in dead] == [b"{not json"]
    assert dict(dead[0].headers)["dlq.reason"].startswith(b"undecodable")
    assert dict(dead[0].headers)["dlq.attempts"] == b"0"


async def test_a_type_no_schema_has_is_dead_lettered_in_its_place(new_lane, unique, db) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("unknown", partitions=1, dead_letters=True)
    first, known, last = events(3, unique)
    stranger = known.model_copy(update={"type": "test.unheard-of"})
    await lane.publish([first, stranger, last])
    await run_until(lane.loop(record_effect, known_types={"test.event"}), db, 2)
    assert sorted(await db.effects()) == sorted([first.id, last.id])
    [dead] = await lane.dead_letters(expect=1)
    assert Envelope.from_bytes(dead.value).id == stranger.id
    assert dict(dead.headers)["dlq.reason"] == b"unknown event type 'test.unheard-of'"
    assert dict(dead.headers)["dlq.attempts"] == b"0"


async def test_a_dead_letter_is_written_once_through_the_outbox_and_kept(
    new_lane, unique, db
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("dlqonce", partitions=1, dead_letters=True)
    await produce(lane.bootstrap, lane.topic, [(b"k", b"{not json")])
    # Read again from the start (a group whose offsets were lost): not dead-lettered twice.
    again = ConsumerLoop(
        group=f"{lane.group}-again",
        topics=[lane.topic],
        handler=record_effect,
        sessions=db.sessions,
        settings=lane.settings,
        dead_letter_group=lane.group,
    )
    for loop in (lane.loop(record_effect), again):
        async with running(loop):
            await until(loop.caught_up)
    dead = await lane.dead_letters(expect=2)
    assert [r.value for r in dead] == [b"{not json"]
    async with db.engine.connect() as conn:
        kept = (await conn.execute(sa.select(outbox_published.c.topic))).scalars().all()
    assert kept == [dead_letter_topic(lane.group)]  # retained, for a broker that loses it


class CrashBeforeOffsetCommit(ConsumerLoop):
    """Commits database transactions but dies before any offset commit."""

    async def commit(self, only=None) -> None:  # type: ignore[no-untyped-def]
        return None


async def test_crash_after_db_commit_before_offset_commit_causes_no_second_effect(
    new_lane, unique, db
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("crash")
    batch = events(30, unique)
    await lane.publish(batch)

    crashing = lane.loop(record_effect, cls=CrashBeforeOffsetCommit)
    await run_until(crashing, db, 30)
    # The restarted consumer gets every message again (no offset was committed)...
    seen: list[str] = []

    async def counting(envelope: Envelope, uow: UnitOfWork) -> None:
        seen.append(envelope.id)
        await record_effect(envelope, uow)

    restarted = lane.loop(counting)
    async with running(restarted):
        # Until the loop holds the topic's partitions and has polled to their end.
        await until(restarted.caught_up)
    effects = await db.effects()
    # ...and the inbox keeps the handler from running twice for any of them.
    assert sorted(effects) == sorted(e.id for e in batch)
    assert seen == []


async def test_stop_under_load_loses_nothing_and_duplicates_nothing(new_lane, unique, db) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("stop")
    # Enough that the batches in hand at the stop (three partitions' worth) cannot be all of it.
    total = 1500
    await lane.publish(events(total, unique))

    first = lane.loop(record_effect)
    async with running(first):  # leaving the block stops it, as SIGTERM does in a service
        await until(lambda: db.has(100), timeout=15, every=0.01)
    stopped_at = len(await db.effects())
    assert stopped_at < total, "the stop should land mid-stream for this test to mean anything"

    second = lane.loop(record_effect)
    await run_until(second, db, total)
    effects = await db.effects()
    assert len(effects) == total
    assert len(set(effects)) == total


async def test_a_stalled_consumer_fails_readiness(
    new_lane, unique, db, producer, kafka_settings
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("stall", partitions=1)
    release = asyncio.Event()

    async def stuck(envelope: Envelope, uow: UnitOfWork) -> None:
        await release.wait()  # a handler hung on a dependency

    settings = kafka_settings.model_copy(update={"stall_seconds": 1.0})
    loop = lane.loop(stuck, settings=settings)
    runtime = Runtime(engine=db.engine, producer=producer, workers=[loop])
    async with running(loop):
        try:
            await until(lambda: loop.assigned, timeout=20)
            assert await runtime.readiness() == []
            await lane.publish(events(1, unique))
            await until(runtime.readiness, timeout=20, every=0.1)
            assert await runtime.readiness() == ["ConsumerLoop stalled"]
            release.set()  # the dependency answers again: the loop polls and readiness recovers
            await until(lambda: ready(runtime), timeout=20, every=0.1)
        finally:
            release.set()  # before the loop is stopped, which waits for the hung handler


async def test_dead_letters_can_be_listed_and_redriven_once(
    new_lane, unique, db, kafka_settings
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("redrive", partitions=1, dead_letters=True)
    topic, group = lane.topic, lane.group
    broken = True

    async def flaky(envelope: Envelope, uow: UnitOfWork) -> None:
        if broken:
            raise RuntimeError("dependency down")
        await record_effect(envelope, uow)

    async def both_dead_lettered() -> bool:
        return len(await list_dead_letters(kafka_settings, group)) >= 2

    await lane.publish(events(2, unique))
    loop = lane.loop(flaky)
    async with running(loop):
        await until(both_dead_lettered, every=0.1)
        lines = await list_dead_letters(kafka_settings, group)
        assert all(f"from {topic}[0]" in line and "dependency down" in line for line in lines)

        broken = False  # the dependency is back: redrive
        assert await redrive(kafka_settings, group) == 2
        assert await redrive(kafka_settings, group) == 0  # already redriven
        await until(lambda: db.has(2), every=0.1)
    assert sorted(await db.effects()) == [f"{unique}-0", f"{unique}-1"]


async def test_a_consumer_without_partitions_is_not_ready(db, new_lane, producer) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("spare", partitions=1)
    first, spare = lane.loop(record_effect), lane.loop(record_effect)
    runtimes = [Runtime(engine=db.engine, producer=producer, workers=[w]) for w in (first, spare)]
    assert await runtimes[0].readiness() == ["ConsumerLoop has no partition assigned"]  # joining
    async with running(first) as first_task:
        await until(lambda: first.assigned, timeout=20)
        async with running(spare):
            # Through the spare's join the one partition stays with one member: the first.
            await until(lambda: ready(runtimes[0]), timeout=20, every=0.1)
            assert await runtimes[1].readiness() == ["ConsumerLoop has no partition assigned"]
            first.stop()  # its partition moves to the spare, which becomes ready
            await first_task[0]
            await until(lambda: ready(runtimes[1]), every=0.1)
