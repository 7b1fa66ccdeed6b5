"""The gateway's projections dead-letter to its one DLQ topic, also with a rebuild's group."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Infra
from in_process import running
from test_gateway_support import gateway_settings, migrate_gateway

from kafka_tools import create_topic, produce
from tandem_api_gateway.main import build_service
from tandem_api_gateway.rebuild import next_group
from tandem_shared import topics
from tandem_shared.dlq import list_dead_letters

pytestmark = pytest.mark.integration


async def test_a_rebuilds_group_dead_letters_where_the_dlq_command_reads(
    infra: Infra, unique: str
) -> None:
    await migrate_gateway(infra)
    settings = gateway_settings(infra)
    group = next_group(next_group(f"{topics.GATEWAY_GROUP}-{unique}"))  # after two rebuilds
    service = build_service(settings, group=group)  # its relay publishes the dead letter
    loop = service.projections
    assert loop is not None
    # A topic of its own: the poison message must reach no other service's consumer.
    topic = f"t-gateway-poison-{unique}"
    loop.topics = [topic]
    await create_topic(infra.bootstrap_servers, topic, partitions=1)
    await produce(infra.bootstrap_servers, topic, [(b"k", b"not an envelope")])
    async with running(service.infra):
        async with asyncio.timeout(30):
            while True:
                # What `tandem-api-gateway dlq list` prints: the gateway group's DLQ topic.
                lines = await list_dead_letters(settings.kafka, topics.GATEWAY_GROUP)
                ours = [line for line in lines if f"from {topic}[0]@0 " in line]
                if ours:
                    break
                await asyncio.sleep(0.2)
    assert loop.group == f"{topics.GATEWAY_GROUP}-{unique}.rebuild-2"
    assert loop.dead_letter_topic == topics.dead_letter_topic(topics.GATEWAY_GROUP)
    assert len(ours) == 1 and "reason=undecodable" in ours[0]
