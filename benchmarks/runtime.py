"""The consumer runtime alone: CPU per event of the loop, inbox, outbox and relay, handler aside.

Starts the embedded broker and PostgreSQL (or uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL),
puts N envelopes on a topic first, then runs one `ConsumerLoop` and one `OutboxRelay` in this
process with a handler that only emits one event per event (as a router decision does): the
process CPU from the loop's start until every event is consumed and its output published is the
runtime's own (aiokafka fetch and decode, envelope parsing, inbox claim, spans, metrics, outbox
insert, relay publish). Then the idle CPU: the same process with nothing to do.

    python -m benchmarks.runtime [--events 4000] [--partitions 8] [--batch 100] [--profile]
"""

# ruff: noqa: T201 - the bench's output is printed

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from benchmarks.handlers import database_url, quiet_production_logging
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.consumer import ConsumerLoop
from tandem_shared.db import create_engine, migrate, session_factory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType
from tandem_shared.kafka import create_producer, ensure_topics
from tandem_shared.local.embedded import start_broker
from tandem_shared.relay import OutboxRelay
from tandem_shared.service import use_uvloop
from tandem_shared.settings import DatabaseSettings, KafkaSettings, OutboxSettings
from tandem_shared.topics import TopicSpec
from tandem_shared.uow import UnitOfWork

IDLE_SECONDS = 5.0


def _envelope(n: int) -> Envelope:
    return Envelope(
        type=EventType.ENGAGEMENT_RECORDED,
        source="/bench",
        subject=f"acct-{n % 997}",
        data={"account_key": f"acct-{n % 997}", "kind": "meeting_requested", "n": n},
    )


async def run(bootstrap: str, database: DatabaseSettings, args: argparse.Namespace) -> None:
    from tandem_router.main import MIGRATIONS

    tag = uuid.uuid4().hex[:6]
    source, target = f"bench-runtime-in-{tag}", f"bench-runtime-out-{tag}"
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        session_timeout_ms=3000,
        heartbeat_interval_ms=300,
        rebalance_timeout_ms=1000,
        batch_max_records=args.batch,
    )
    await ensure_topics(
        kafka, (TopicSpec(source, args.partitions), TopicSpec(target, args.partitions))
    )
    schema = f"runtime_bench_{tag}"
    await migrate(settings=database, schema=schema, script_location=MIGRATIONS)
    engine = create_engine(database, schema=schema)
    sessions = session_factory(engine)

    feeder = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262_144)
    await feeder.start()
    for n in range(args.events):
        envelope = _envelope(n)
        await feeder.send(source, envelope.to_bytes(), key=envelope.key)
    await feeder.stop()

    handled = 0

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        nonlocal handled
        handled += 1
        uow.emit(
            target,
            Envelope(
                type=EventType.ROUTING_DECIDED,
                source="/bench",
                subject=envelope.subject,
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, envelope.id)),
                time=envelope.time,
                causationid=envelope.id,
                data=envelope.data,
            ),
        )

    producer = create_producer(kafka, client_id="bench-runtime")
    await producer.start()
    loop = ConsumerLoop(
        group=f"bench-runtime-{tag}",
        topics=[source],
        handler=handler,
        sessions=sessions,
        settings=kafka,
        known_types=frozenset(EventType),
    )
    relay = OutboxRelay(
        engine=engine,
        producer=producer,
        schema=schema,
        settings=OutboxSettings(),
        listen_dsn=listen_dsn(database.url),
    )
    rounds = 0
    publish = relay.publish_batch

    async def counted() -> int:
        # Rounds that published: at a trickle, one per committed batch, each its own transaction.
        nonlocal rounds
        published = await publish()
        rounds += published > 0
        return published

    relay.publish_batch = counted  # type: ignore[method-assign]
    profiler = cProfile.Profile() if args.profile else None
    cpu, started = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    tasks = [asyncio.create_task(loop.run()), asyncio.create_task(relay.run())]
    pending = sa.text("SELECT count(*) FROM outbox")
    while True:
        await asyncio.sleep(0.1)
        if handled >= args.events:
            async with sessions() as session:
                if not await session.scalar(pending):
                    break
    if profiler is not None:
        profiler.disable()
    busy_cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    idle_from = time.process_time()
    await asyncio.sleep(IDLE_SECONDS)
    idle_cpu = time.process_time() - idle_from
    loop.stop()
    relay.stop()
    await asyncio.gather(*tasks)
    await producer.stop()
    await engine.dispose()
    print(
        f"runtime  {args.events} events  {args.events / wall:6.0f} events/s  "
        f"cpu {1000 * busy_cpu / args.events:.3f} ms/event  "
        f"idle cpu {1000 * idle_cpu / IDLE_SECONDS:.1f} ms/s  relay rounds {rounds}"
    )
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument(
        "--batch", type=int, default=100, help="records per transaction at most (1: as a trickle)"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    quiet_production_logging()
    use_uvloop()  # as the services run
    with tempfile.TemporaryDirectory(prefix="tandem-bench-runtime-") as tmp:
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        broker = None if external else start_broker(log_path=Path(tmp) / "broker.log")
        try:
            bootstrap = external or (broker.bootstrap_servers if broker else "")
            with database_url(Path(tmp)) as (url, _):
                asyncio.run(run(bootstrap, DatabaseSettings(url=url), args))
        finally:
            if broker is not None:
                broker.stop()


if __name__ == "__main__":
    main()
