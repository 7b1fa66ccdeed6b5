"""Events projected in batches (one transaction each, as the consumer runtime runs them) give the
rows, roll-ups and metric aggregates of the same events projected one by one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_gateway_read_side import Events
from test_gateway_support import build_scenario, own_schema, project

from tandem_api_gateway.adapters.projection_store import FEED_CHANNEL
from tandem_api_gateway.adapters.tables import METRIC_DAYS, READ_MODELS, ROLL_UPS
from tandem_api_gateway.feed import Feed, FeedListener
from tandem_api_gateway.projections import Projector
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.envelope import Envelope
from tandem_shared.outbox import claim_inbox_batch
from tandem_shared.uow import unit_of_work

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def one_by_one(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with own_schema(infra, "gw_alone") as found:
        yield found


@pytest_asyncio.fixture(loop_scope="session")
async def batched(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with own_schema(infra, "gw_batched") as found:
        yield found


async def project_in_batches(
    sessions: async_sessionmaker[AsyncSession], envelopes: list[Envelope], *, size: int
) -> None:
    """Apply envelopes `size` to a transaction, as the consumer runtime's batches do."""
    projector = Projector()
    for start in range(0, len(envelopes), size):
        batch = envelopes[start : start + size]
        async with unit_of_work(sessions) as uow:
            fresh = await claim_inbox_batch(uow.session, [(e.id, "test") for e in batch])
            for envelope in batch:
                if envelope.id in fresh:
                    fresh.discard(envelope.id)
                    await projector(envelope, uow)


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[str]]:
    async with sessions() as session:
        return {
            table.name: list(
                (await session.execute(sa.text(f"SELECT t::text FROM {table.name} t ORDER BY 1")))
                .scalars()
                .all()
            )
            for table in (*READ_MODELS, *ROLL_UPS, *METRIC_DAYS)
        }


async def test_a_batch_gives_the_rows_of_its_events_one_by_one(
    one_by_one: async_sessionmaker[AsyncSession], batched: async_sessionmaker[AsyncSession]
) -> None:
    scenario = build_scenario("batch")
    envelopes = [e for events in scenario.by_topic.values() for e in events]
    # A random history: clocks, merges, deletions and duplicates out of order.
    envelopes += Events(7).history()
    await project(one_by_one, envelopes)
    await project_in_batches(batched, envelopes, size=40)

    alone = await _rows(one_by_one)
    assert alone["accounts"] and alone["timeline"] and alone["handoff_days"]
    assert await _rows(batched) == alone


_END = {"kind": "end"}


async def _feed_of(
    infra: Infra,
    sessions: async_sessionmaker[AsyncSession],
    project_all: Callable[[], Awaitable[None]],
) -> list[dict[str, Any]]:
    """The live-feed messages that projecting gives, in the order they arrive."""
    feed = Feed()
    listener = FeedListener(dsn=listen_dsn(infra.settings().database.url), feed=feed)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), timeout=10)
        async with feed.subscribe() as messages:
            await project_all()
            # Committed after the projections, so it arrives after their messages.
            async with sessions() as session, session.begin():
                end = sa.text("SELECT pg_notify(:channel, :end)")
                await session.execute(
                    end, {"channel": FEED_CHANNEL, "end": orjson.dumps(_END).decode()}
                )
            found: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                while (message := await anext(messages)) != _END:
                    found.append(message)
            return found
    finally:
        listener.stop()
        await task


async def test_a_batch_sends_its_events_live_feed_messages_in_their_order(
    infra: Infra,
    one_by_one: async_sessionmaker[AsyncSession],
    batched: async_sessionmaker[AsyncSession],
) -> None:
    scenario = build_scenario("feed")
    envelopes = [e for events in scenario.by_topic.values() for e in events]
    alone = await _feed_of(infra, one_by_one, lambda: project(one_by_one, envelopes))
    assert len(alone) > len({orjson.dumps(m) for m in alone})  # some say the same
    # PostgreSQL sends a message once per transaction, at its first place.
    once = [orjson.loads(m) for m in dict.fromkeys(orjson.dumps(m) for m in alone)]

    async def in_one_batch() -> None:
        await project_in_batches(batched, envelopes, size=len(envelopes))

    assert await _feed_of(infra, batched, in_one_batch) == once
