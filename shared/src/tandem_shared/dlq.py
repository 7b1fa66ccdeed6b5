"""Dead letters: the outbox row that dead-letters a message, and the `tandem-<service> dlq ...`
command that lists and redrives a consumer group's dead-letter topic."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from tandem_shared.kafka import create_producer
from tandem_shared.settings import KafkaSettings, Settings
from tandem_shared.topics import dead_letter_topic

# How many times a message was redriven: a redriven message that fails again is dead-lettered
# again (a new dead letter), while a redelivery of the same one is not.
REDRIVES = "tandem-redrives"


def dead_letter_row(
    topic: str,
    record: ConsumerRecord[bytes, bytes],
    reason: str,
    *,
    group: str,
    attempts: int,
    event_id: str | None,
) -> dict[str, Any]:
    """The outbox row that puts `record` on the dead-letter `topic`, with why and where from.

    Its event id names the message (its envelope's id, or its place when it has none) and the
    redrive it failed after, so the consumer's inbox dead-letters it once.
    """
    source = event_id or f"{record.partition}@{record.offset}"
    redrives = _header(record, REDRIVES) or "0"
    headers = {
        **{key: value.decode(errors="replace") for key, value in record.headers or ()},
        "dlq.reason": reason[:4000],
        "dlq.group": group,
        "dlq.topic": record.topic,
        "dlq.partition": str(record.partition),
        "dlq.offset": str(record.offset),
        "dlq.attempts": str(attempts),
    }
    return {
        "event_id": f"dead-letter:{record.topic}:{source}:{redrives}",
        "topic": topic,
        "key": record.key or b"",
        "value": record.value or b"",
        # PostgreSQL's jsonb has no NUL character.
        "headers": {key: value.replace("\x00", "\ufffd") for key, value in headers.items()},
    }


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return str(value.decode(errors="replace"))
    return ""


async def _read(
    settings: KafkaSettings, group: str, *, redrive_group: str | None
) -> tuple[AIOKafkaConsumer, list[ConsumerRecord[bytes, bytes]]]:
    topic = dead_letter_topic(group)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=redrive_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    records: list[ConsumerRecord[bytes, bytes]] = []
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        for items in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(items)
    return consumer, records


async def list_dead_letters(settings: KafkaSettings, group: str) -> list[str]:
    """Return one line per dead letter: where it came from and why."""
    consumer, records = await _read(settings, group, redrive_group=None)
    await consumer.stop()
    return [
        f"{r.partition}:{r.offset} from {_header(r, 'dlq.topic')}"
        f"[{_header(r, 'dlq.partition')}]@{_header(r, 'dlq.offset')} "
        f"attempts={_header(r, 'dlq.attempts')} reason={_header(r, 'dlq.reason')}"
        for r in records
    ]


async def redrive(settings: KafkaSettings, group: str) -> int:
    """Re-publish not-yet-redriven dead letters to their original topics; return how many."""
    consumer, records = await _read(settings, group, redrive_group=f"{group}-dlq-redrive")
    producer = create_producer(settings, client_id=f"{group}-redrive")
    await producer.start()
    try:
        for record in records:
            headers = [
                (k, v)
                for k, v in record.headers or ()
                if not k.startswith("dlq.") and k != REDRIVES
            ]
            headers.append((REDRIVES, str(int(_header(record, REDRIVES) or "0") + 1).encode()))
            await producer.send_and_wait(
                _header(record, "dlq.topic"), value=record.value, key=record.key, headers=headers
            )
        if records:
            # Remember what was redriven, so a second run does not send it again.
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return len(records)


def command(group: str) -> Callable[[Settings, list[str]], int]:
    """The `dlq` subcommand of a service's command line, for its consumer group."""

    def run(settings: Settings, argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog="dlq")
        parser.add_argument("action", choices=["list", "redrive"])
        args = parser.parse_args(argv)
        if args.action == "list":
            for line in asyncio.run(list_dead_letters(settings.kafka, group)):
                print(line)  # noqa: T201 - command output
            return 0
        count = asyncio.run(redrive(settings.kafka, group))
        print(f"redrove {count} message(s) from {dead_letter_topic(group)}")  # noqa: T201
        return 0

    return run
