"""Scenario 5: poison messages on every topic while webhooks flow. Each lands on the dead-letter
topic of every group that consumes its topic, with its reason; the rest flows; `dlq redrive`
puts a fixed message back on its topic once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from fault_config import account_key
from fault_stack import FaultStack
from ledger import Signature, settle
from scenario import QUIET, Injected, judge, now, under_load
from workload import meeting

from kafka_tools import produce
from tandem_shared import topics
from tandem_shared.envelope import Envelope
from tandem_shared.events import EngagementKind, EngagementRecorded, EventType

pytestmark = pytest.mark.integration

# Who consumes what (each service's subscription; the gateway projects every topic).
CONSUMERS = {
    topics.ROUTER_GROUP: {
        topics.CRM,
        topics.ENGAGEMENT,
        topics.INTENT,
        topics.TAL,
        topics.HANDOFF_ACTIONS,
        topics.SLA,
        topics.PEOPLE,
    },
    topics.SLA_GROUP: {topics.ROUTING, topics.CRM, topics.HANDOFF_ACTIONS, topics.PEOPLE},
    topics.ALERTS_GROUP: {topics.ALERT_REQUESTS, topics.HANDOFF_ACTIONS, topics.PEOPLE},
    topics.GATEWAY_GROUP: {spec.name for spec in topics.DATA_TOPICS},
}


def consumers_of(topic: str) -> set[str]:
    return {group for group, subscribed in CONSUMERS.items() if topic in subscribed}


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` now, from the beginning, without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in parts]
            if all(at >= ends[tp] for at, tp in zip(positions, parts, strict=True)):
                break
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    return next((v.decode() for k, v in record.headers or () if k == name), "")


async def dead_letters(stack: FaultStack, token: str) -> dict[tuple[str, str, str], list[str]]:
    """(group, original topic, poison kind) -> reasons, of this run's poison only."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for group in CONSUMERS:
        for record in await read_topic(stack.bootstrap, topics.dead_letter_topic(group)):
            value = record.value or b""
            if token.encode() in value:
                kind = value.split(b"|", 2)[1].decode() if b"|" in value else "?"
                where = (group, header(record, "dlq.topic"), kind)
                found.setdefault(where, []).append(header(record, "dlq.reason"))
    return found


def poison(token: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Not JSON at all, and an envelope of a type no Tandem schema has; the kind is in the value
    between bars, for the count."""
    bad_json = f'{{"id": "|bad-json|{token}", "type": '.encode()
    unknown = Envelope(
        type="tandem.faults.unheard-of", source="/faults", data={"note": f"|unknown|{token}"}
    )
    return [(b"poison", bad_json), (b"poison", unknown.to_bytes())]


def raising(token: str) -> tuple[bytes, bytes]:
    """A known type whose data the handlers cannot read: they raise, retry, dead-letter."""
    envelope = Envelope(
        type=EventType.ENGAGEMENT_RECORDED, source="/faults", data={"note": f"|raises|{token}"}
    )
    return b"poison", envelope.to_bytes()


async def test_poison_on_every_topic_is_dead_lettered_and_the_rest_flows(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    token = uuid.uuid4().hex
    data_topics = [spec.name for spec in topics.DATA_TOPICS]

    async def inject() -> Injected:
        for topic in data_topics:
            await produce(stack.bootstrap, topic, poison(token, topic))
        await produce(stack.bootstrap, topics.ENGAGEMENT, [raising(token)])
        count = 2 * len(data_topics) + 1
        return Injected(f"{count} poison messages on {len(data_topics)} topics", now(), [])

    hooks, injected = await under_load(stack, inject)
    await judge(stack, "5 poison", hooks, injected, expected)

    want = {(g, t, "bad-json") for t in data_topics for g in consumers_of(t)}
    want |= {(g, topics.ENGAGEMENT, "raises") for g in (topics.ROUTER_GROUP, topics.GATEWAY_GROUP)}
    deadline = time.monotonic() + 60
    while not want <= (found := await dead_letters(stack, token)).keys():
        assert time.monotonic() < deadline, f"missing dead letters: {want - found.keys()}"
        await asyncio.sleep(1)
    for where in want:
        [reason] = found[where]  # once, not once per retry
        assert reason, where
    reasons = [(k[2], r) for k, v in found.items() for r in v]
    assert all(r.startswith("undecodable") for kind, r in reasons if kind == "bad-json"), reasons
    assert all("ValidationError" in r for kind, r in reasons if kind == "raises"), reasons
    print(f"dead letters: {Counter(k[2] for k in found)}", flush=True)


async def test_unknown_event_types_are_dead_lettered(stack: FaultStack) -> None:
    token = uuid.uuid4().hex
    data_topics = [spec.name for spec in topics.DATA_TOPICS]
    for topic in data_topics:
        await produce(stack.bootstrap, topic, poison(token, topic)[1:])
    want = {(g, t, "unknown") for t in data_topics for g in consumers_of(t)}
    deadline = time.monotonic() + 30
    while not want <= (await dead_letters(stack, token)).keys():
        assert time.monotonic() < deadline, "unknown types were not dead-lettered"
        await asyncio.sleep(1)


async def test_redrive_puts_a_fixed_message_back_once(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    """A meeting request the router dead-lettered (say, before a fix) goes back once per redrive
    of it, however often redrive runs, and is handed off once."""
    [number] = stack.pool.take(1)
    event = EngagementRecorded(
        engagement_id=f"mr-{uuid.uuid4().hex}",
        source="faults",
        kind=EngagementKind.MEETING_REQUEST,
        account_key=account_key(number),
        contact_email=f"jane@{account_key(number)}",
        contact_name="Jane Doe",
        occurred_at=datetime.now(UTC),
    )
    envelope = Envelope.wrap(
        event,
        type=EventType.ENGAGEMENT_RECORDED,
        source="/ingest/generic",
        subject=account_key(number),
    )
    dlq = topics.dead_letter_topic(topics.ROUTER_GROUP)
    headers = [("dlq.topic", topics.ENGAGEMENT.encode()), ("dlq.reason", b"fixed since")]
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(dlq, envelope.to_bytes(), key=envelope.key, headers=headers)
    finally:
        await producer.stop()
    started = now()
    first = await stack.command("router", "dlq", "redrive")
    second = await stack.command("router", "dlq", "redrive")
    assert "redrove" in first and "redrove" in second, (first, second)
    hook = meeting(number)  # stands for the fixed message in the ledger: same kind, same account
    hook.accepted_at = started
    verdict = await settle(stack, [hook], expected, since=started, timeout=60, quiet=QUIET)
    engagements = await read_topic(stack.bootstrap, topics.ENGAGEMENT)
    on_topic = [r for r in engagements if envelope.id.encode() in (r.value or b"")]
    assert len(on_topic) == 1, "redriven more than once"
    assert (verdict.lost, verdict.duplicated) == (0, 0), verdict.problems
