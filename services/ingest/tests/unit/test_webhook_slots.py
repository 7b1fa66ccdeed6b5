"""The webhook path queues requests for its pool's connections, in arrival order."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import async_sessionmaker

from tandem_ingest.api import IngestContext
from tandem_ingest.main import webhook_engine
from tandem_ingest.settings import IngestOptions, IngestSettings

URL = "postgresql+asyncpg://tandem@127.0.0.1:1/tandem"  # never connected to


def _context(pool_size: int) -> IngestContext:
    settings = IngestSettings(database={"url": URL, "pool_size": pool_size})
    engine = webhook_engine(settings)
    return IngestContext(
        sources={},
        sessions=async_sessionmaker(engine),
        options=IngestOptions(),
        webhook_engine=engine,
    )


async def test_one_request_slot_per_pooled_connection() -> None:
    slots = _context(pool_size=3).webhook_slots
    assert slots is not None
    for _ in range(3):
        await asyncio.wait_for(slots.acquire(), timeout=1)
    assert slots.locked()  # the fourth request waits, in arrival order


async def test_waiting_requests_get_their_slot_in_arrival_order() -> None:
    slots = _context(pool_size=1).webhook_slots
    assert slots is not None
    served: list[int] = []

    async def request(n: int) -> None:
        async with slots:
            served.append(n)
            await asyncio.sleep(0)

    await slots.acquire()
    waiting = [asyncio.create_task(request(n)) for n in range(5)]
    await asyncio.sleep(0)
    slots.release()
    # A late arrival must not overtake the ones already waiting.
    late = asyncio.create_task(request(99))
    await asyncio.gather(*waiting, late)
    assert served == [0, 1, 2, 3, 4, 99]
