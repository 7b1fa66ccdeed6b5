"""The hazards concurrent, batched consumers bring, against the real broker and database.

Per-account order across concurrent partitions, a poison message inside a batch, a rebalance and
a SIGKILL mid-batch, and a real-time event overtaking a bulk backlog.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa
import test_consumer_runtime as rt

from kafka_tools import create_topic, produce_envelopes
from tandem_shared.consumer import ConsumerLoop, UnitOfWork
from tandem_shared.envelope import Envelope

# The runtime's fixtures (a schema with inbox, outbox and a side-effects table; lanes).
db = rt.db
new_lane = rt.new_lane
producer = rt.producer


def keyed_events(prefix: str, *, accounts: int, each: int) -> list[Envelope]:
    """`each` events per account, numbered in the order they are published."""
    return [
        Envelope(
            id=f"{prefix}-{a}-{n}",
            type="test.event",
            source="/test",
            subject=f"acct{a}.example",
            data={"n": n},
        )
        for n in range(each)
        for a in range(accounts)
    ]


async def test_partitions_run_concurrently_and_each_account_keeps_its_order(
    new_lane, unique, db, kafka_settings
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("order", partitions=4)
    await lane.publish(keyed_events(unique, accounts=12, each=40))
    seen: dict[str, list[int]] = defaultdict(list)
    running, most = 0, 0

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(random.uniform(0, 0.002))  # let partitions interleave
        running -= 1
        seen[str(envelope.subject)].append(envelope.data["n"])
        await rt.record_effect(envelope, uow)

    settings = kafka_settings.model_copy(update={"max_concurrency": 4, "batch_max_records": 20})
    await rt.run_until(lane.loop(handler, settings=settings), db, 480)

    assert len(seen) == 12
    for subject, order in seen.items():
        assert order == sorted(order), f"{subject} handled out of order: {order}"
    assert sorted(len(v) for v in seen.values()) == [40] * 12
    assert most > 1, "partitions should have been handled at the same time"


async def test_a_poison_message_inside_a_batch_is_the_only_one_dead_lettered(
    new_lane, unique, db
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("batchdlq", partitions=1, dead_letters=True)
    batch = rt.events(40, unique)
    await lane.publish(batch)
    transactions: dict[str, int] = {}
    calls: dict[str, int] = defaultdict(int)

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        calls[envelope.id] += 1
        if envelope.data["n"] == 17:
            raise ValueError("account acct1.com is corrupt")
        await rt.record_effect(envelope, uow)
        txid = await uow.session.scalar(sa.text("SELECT txid_current()"))
        transactions[envelope.id] = int(txid)

    await rt.run_until(lane.loop(handler), db, 39)

    effects = await db.effects()
    assert sorted(effects) == sorted(e.id for e in batch if e.data["n"] != 17)
    assert len(effects) == len(set(effects)) == 39  # the rest processed once
    dead = await lane.dead_letters(expect=1)
    assert [Envelope.from_bytes(r.value).id for r in dead] == [f"{unique}-17"]
    assert b"acct1.com is corrupt" in dict(dead[0].headers)["dlq.reason"]
    # Batches, not a transaction per message: the 39 committed in a handful of transactions.
    committed = {transactions[e] for e in effects}
    assert len(committed) <= 5, f"{len(committed)} transactions for 39 messages"
    assert calls[f"{unique}-17"] >= 2  # retried alone before it was dead-lettered


async def test_a_rebalance_mid_batch_loses_nothing_and_duplicates_nothing(
    new_lane, unique, db, kafka_settings
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("rebalance", partitions=4)
    await lane.publish(rt.events(800, unique))

    async def slow(envelope: Envelope, uow: UnitOfWork) -> None:
        await asyncio.sleep(0.004)
        await rt.record_effect(envelope, uow)

    settings = kafka_settings.model_copy(update={"batch_max_records": 25})
    first, second = lane.loop(slow, settings=settings), lane.loop(slow, settings=settings)
    async with rt.running(first) as first_task:
        await rt.until(lambda: db.has(50), timeout=20, every=0.01)
        async with rt.running(second):
            # The second member joins: the partitions are revoked mid-batch and shared out.
            await rt.until(lambda: second.assigned, timeout=30)
            first.stop()  # and the first leaves: everything moves again
            await first_task[0]
            await rt.until(lambda: db.has(800), timeout=60)
    effects = await db.effects()
    assert len(effects) == 800
    assert len(set(effects)) == 800


_KILLABLE = textwrap.dedent(
    """
    import asyncio, sys
    import sqlalchemy as sa
    from tandem_shared.consumer import ConsumerLoop
    from tandem_shared.db import create_engine, session_factory
    from tandem_shared.settings import DatabaseSettings, KafkaSettings

    bootstrap, url, schema, topic, group = sys.argv[1:]
    effects = sa.table("side_effects", sa.column("event_id"))

    async def handler(envelope, uow):
        await asyncio.sleep(0.002)
        await uow.session.execute(sa.insert(effects).values(event_id=envelope.id))

    async def main():
        settings = KafkaSettings(
            bootstrap_servers=bootstrap, session_timeout_ms=3000, heartbeat_interval_ms=300,
            rebalance_timeout_ms=1000, batch_max_records=50,
        )
        engine = create_engine(DatabaseSettings(url=url, pool_size=5), schema=schema)
        loop = ConsumerLoop(group=group, topics=[topic], handler=handler,
                            sessions=session_factory(engine), settings=settings)
        await loop.run()

    asyncio.run(main())
    """
)


async def test_a_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    new_lane, unique, db, infra, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lane = await new_lane("sigkill", partitions=3)
    await lane.publish(rt.events(1500, unique))
    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE)
    url = infra.settings().database.url
    args = [sys.executable, str(script), lane.bootstrap, url, f"rt_{unique}", lane.topic]
    proc = subprocess.Popen([*args, lane.group], env=dict(os.environ))
    try:
        await rt.until(lambda: db.has(200), timeout=60, every=0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = len(await db.effects())
    assert killed_at < 1500, "the kill should land mid-stream for this test to mean anything"

    await rt.run_until(lane.loop(rt.record_effect), db, 1500, timeout=90)
    effects = await db.effects()
    assert len(effects) == 1500
    assert len(set(effects)) == 1500


async def _bulk_backlog(new_lane, infra, unique, *, partitions, rows):  # type: ignore[no-untyped-def]
    """A bulk lane with `rows` waiting, and an empty one-partition real-time topic."""
    bulk = await new_lane(f"bulk{partitions}", partitions=partitions)
    realtime = f"t-realtime-{unique}"
    await create_topic(infra.bootstrap_servers, realtime, partitions=1)
    await bulk.publish(rt.events(rows, f"{unique}-bulk"))
    return bulk, realtime


async def test_a_real_time_event_overtakes_a_bulk_backlog(
    new_lane, unique, db, kafka_settings, infra
) -> None:  # type: ignore[no-untyped-def]
    bulk, realtime = await _bulk_backlog(new_lane, infra, unique, partitions=6, rows=3000)
    handled: list[str] = []

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        if envelope.type == "test.event":
            await asyncio.sleep(0.003)  # a bulk row's cost
        handled.append(envelope.id)
        await rt.record_effect(envelope, uow)

    settings = kafka_settings.model_copy(update={"max_concurrency": 2, "batch_max_records": 200})
    loop = ConsumerLoop(
        group=bulk.group,
        topics=[bulk.topic, realtime],
        handler=handler,
        sessions=db.sessions,
        settings=settings,
        bulk_topics={bulk.topic},
    )
    meeting = Envelope(id=f"{unique}-meeting", type="test.meeting", source="/t", subject="a.com")
    async with rt.running(loop):
        await rt.until(lambda: len(handled) >= 200, timeout=30, every=0.01)
        published_at = len(handled)
        await produce_envelopes(infra.bootstrap_servers, realtime, [meeting])
        await rt.until(lambda: meeting.id in handled, timeout=30, every=0.01)
        overtaken_at = handled.index(meeting.id)
    # Six bulk partitions queue for the one slot the bulk lane may hold; the meeting request
    # takes the slot kept free: only what the bulk batch in hand handles while the meeting's
    # fetch is on its way runs before it (one lane for all would queue it behind whole batches
    # of 200 rows: about 200-400 rows).
    behind = overtaken_at - published_at
    assert behind < 100, f"{behind} bulk rows were handled before the meeting request"


async def test_no_bulk_batch_starts_while_real_time_records_wait(
    new_lane, unique, db, kafka_settings, infra
) -> None:  # type: ignore[no-untyped-def]
    bulk, realtime = await _bulk_backlog(new_lane, infra, unique, partitions=2, rows=2000)
    handled: list[str] = []

    async def handler(envelope: Envelope, uow: UnitOfWork) -> None:
        await asyncio.sleep(0.003)  # a row's cost, bulk or not
        handled.append(envelope.type)
        await rt.record_effect(envelope, uow)

    settings = kafka_settings.model_copy(
        update={"max_concurrency": 2, "batch_max_records": 100, "bulk_batch_max_records": 20}
    )
    loop = ConsumerLoop(
        group=bulk.group,
        topics=[bulk.topic, realtime],
        handler=handler,
        sessions=db.sessions,
        settings=settings,
        bulk_topics={bulk.topic},
    )
    meetings = [
        Envelope(id=f"{unique}-m{n}", type="test.meeting", source="/t", subject="a.com")
        for n in range(300)
    ]
    async with rt.running(loop):
        await rt.until(lambda: len(handled) >= 100, timeout=30, every=0.01)
        await produce_envelopes(infra.bootstrap_servers, realtime, meetings)
        await rt.until(lambda: handled.count("test.meeting") == 300, timeout=60, every=0.01)
    first = handled.index("test.meeting")
    last = len(handled) - 1 - handled[::-1].index("test.meeting")
    # The bulk lane has a slot of its own; without yielding it would run beside the meeting
    # requests (about as many rows as they took). Yielding, it finishes the batch in hand and
    # starts another only in a gap between two fetches of the real-time partition.
    bulk_beside = handled[first : last + 1].count("test.event")
    assert bulk_beside <= 3 * 20, f"{bulk_beside} bulk rows ran beside 300 real-time ones"
