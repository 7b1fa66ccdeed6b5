"""Kafka plumbing on aiokafka: the producer, topic creation and dead-letter headers."""

from __future__ import annotations

import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tandem_shared.settings import KafkaSettings
from tandem_shared.topics import ALL_TOPICS, TopicSpec


def create_producer(settings: KafkaSettings, *, client_id: str) -> AIOKafkaProducer:
    """Create (not start) a producer that waits for every in-sync replica."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{client_id}",
        acks="all",
        enable_idempotence=settings.idempotence,
        linger_ms=5,
        # 256 KB per partition batch (16 KB by default): a relay batch of 2,000 rows then goes
        # out in one produce round, not a dozen, under brokers' 1 MB message limit.
        max_batch_size=262_144,
        request_timeout_ms=30_000,
    )


async def ensure_topics(
    settings: KafkaSettings, topics: tuple[TopicSpec, ...] = ALL_TOPICS, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            # Another process may create them between our list and create: same outcome.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t.name, t.partitions, replication) for t in missing]
                )
        return [t.name for t in missing]
    finally:
        await admin.close()
