"""Small helpers tests use to put messages on topics and read them back."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord, TopicPartition

from tandem_shared.envelope import Envelope


async def create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_envelopes(bootstrap: str, topic: str, envelopes: list[Envelope]) -> None:
    await produce(bootstrap, topic, [(e.key, e.to_bytes()) for e in envelopes])


async def read_all(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 10.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the beginning until `expect` records arrived or the timeout passed."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
        # Give a moment for unexpected extras to show up, so "exactly N" can fail.
        batch = await consumer.getmany(timeout_ms=300)
        for items in batch.values():
            records.extend(items)
    finally:
        await consumer.stop()
    return records


async def read_envelopes(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 10.0
) -> list[Envelope]:
    return [
        Envelope.from_bytes(r.value or b"")
        for r in await read_all(bootstrap, topic, expect=expect, timeout=timeout)
    ]


async def start_group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit a new group's offsets at the topics' current end, so it sees only new events.

    Integration tests share topics: without this, a fresh group also consumes every event
    earlier test modules produced. Apache Kafka honours these offsets; the embedded broker
    (Tansu) does not reliably honour offsets committed from outside the group, so tests must
    still pick out their own events.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: offset for tp, offset in ends.items()})
    finally:
        await consumer.stop()
