"""Rebuilding the read models from the topics: truncate, rewind the group, consume to the end.

Run it with the gateway's consumers stopped (scaled to zero): a live member of the group would
take some partitions, and the rebuild would only see the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.adapters.projection_store import truncate_read_models
from tandem_shared.consumer import ConsumerLoop
from tandem_shared.settings import KafkaSettings


async def rewind_group(settings: KafkaSettings, *, group: str, topics: Sequence[str]) -> int:
    """Commit the beginning offset of every partition of `topics` for `group`; return the count."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in beginnings.items()})
        return len(partitions)
    finally:
        await consumer.stop()


async def consume_until_caught_up(loop: ConsumerLoop, *, within_seconds: float) -> None:
    """Run a consumer loop until it has processed everything on its partitions, then stop it."""
    task = asyncio.create_task(loop.run(), name=f"rebuild-{loop.group}")
    deadline = time.monotonic() + within_seconds
    try:
        while not loop.caught_up():
            if task.done():
                task.result()  # re-raise what ended the loop
                raise RuntimeError("the consumer stopped before catching up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"rebuild did not catch up within {within_seconds} s")
            await asyncio.sleep(0.1)
    finally:
        loop.stop()
        await task


async def rebuild(
    *,
    sessions: async_sessionmaker[AsyncSession],
    loop: ConsumerLoop,
    kafka: KafkaSettings,
    within_seconds: float = 600.0,
) -> None:
    """Empty the read models and the inbox, rewind the loop's group and re-consume everything."""
    async with sessions() as session, session.begin():
        await truncate_read_models(session)
    await rewind_group(kafka, group=loop.group, topics=loop.topics)
    await consume_until_caught_up(loop, within_seconds=within_seconds)
