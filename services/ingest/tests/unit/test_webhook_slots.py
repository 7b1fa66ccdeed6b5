"""The webhook path queues requests for its pool's connections, in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tandem_ingest.adapters.webhook_store import WebhookStore
from tandem_shared.settings import DatabaseSettings

URL = "postgresql+asyncpg://tandem@127.0.0.1:1/tandem"  # never connected to: connections are lazy


@pytest.fixture
async def slots(request: pytest.FixtureRequest) -> AsyncIterator[asyncio.Semaphore]:
    settings = DatabaseSettings(url=URL, pool_size=request.param)
    async with WebhookStore.open(settings, schema="ingest") as store:
        yield store.slots


@pytest.mark.parametrize("slots", [3], indirect=True)
async def test_one_request_slot_per_pooled_connection(slots: asyncio.Semaphore) -> None:
    for _ in range(3):
        await asyncio.wait_for(slots.acquire(), timeout=1)
    assert slots.locked()  # the fourth request waits, in arrival order


@pytest.mark.parametrize("slots", [1], indirect=True)
async def test_waiting_requests_get_their_slot_in_arrival_order(slots: asyncio.Semaphore) -> None:
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
