"""Helpers of the Alerts integration tests: polling and reading a topic for matching events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from tandem_shared.envelope import Envelope


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def find_events(
    bootstrap: str,
    topic: str,
    match: Callable[[Envelope, dict[str, bytes]], bool],
    *,
    count: int = 1,
    timeout: float = 20.0,
) -> list[tuple[Envelope, dict[str, bytes]]]:
    """Read `topic` from the start until `count` records match."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[tuple[Envelope, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        envelope = Envelope.from_bytes(record.value or b"")
                        headers = dict(record.headers or ())
                        if match(envelope, headers):
                            found.append((envelope, headers))
    finally:
        await consumer.stop()
    return found
