"""The alerts' listing by channel reads `alert_channels`, which the triggers of migration 0013
keep equal to the alerts with a delivery on each channel: whichever arrives first, after
retention removes deliveries, and empty after a rebuild's truncate."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_gateway_read_side import Events, _day
from test_gateway_support import own_schema, project

from tandem_api_gateway.adapters import read_store
from tandem_api_gateway.adapters.projection_store import truncate_read_models
from tandem_api_gateway.adapters.tables import alert_channels
from tandem_api_gateway.retention import retain
from tandem_api_gateway.settings import GatewayOptions
from tandem_shared import events as ev
from tandem_shared.envelope import Envelope

pytestmark = pytest.mark.integration

_DELIVERED_ON = """
SELECT DISTINCT d.channel, a.alert_id, a.sort_at
FROM alerts a JOIN alert_deliveries d ON d.alert_id = a.alert_id
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The gateway's tables in a schema of this module's own."""
    async with own_schema(infra, "gw_channels") as found:
        yield found


def _history(seed: int) -> list[Envelope]:
    """The random history, with e-mail and Slack deliveries of some alerts besides their log
    delivery, shuffled again: a delivery may arrive before its alert."""
    envelopes = Events(seed).history()
    rng = random.Random(seed)
    requested = [e for e in envelopes if e.type == ev.EventType.ALERT_REQUESTED]
    for envelope in rng.sample(requested, len(requested) // 2):
        alert = ev.AlertRequested.model_validate(envelope.data)
        channel = rng.choice([ev.DeliveryChannel.EMAIL, ev.DeliveryChannel.SLACK])
        delivered = ev.AlertDelivered(
            alert_id=alert.alert_id,
            recipient_id=alert.recipient_ids[0],
            channel=channel,
            destination="somewhere",
            attempts=1,
            delivered_at=alert.requested_at + timedelta(seconds=5),
        )
        envelopes.append(
            Envelope.wrap(
                delivered,
                type=ev.EventType.ALERT_DELIVERED,
                source="/test",
                subject=alert.account_key,
                id=uuid.uuid4().hex,
            )
        )
    rng.shuffle(envelopes)
    return envelopes


async def _listed(sessions: async_sessionmaker[AsyncSession]) -> set[tuple[Any, ...]]:
    async with sessions() as session:
        rows = await session.execute(
            sa.select(alert_channels.c.channel, alert_channels.c.alert_id, alert_channels.c.sort_at)
        )
        return {tuple(r) for r in rows}


async def _delivered_on(sessions: async_sessionmaker[AsyncSession]) -> set[tuple[Any, ...]]:
    async with sessions() as session:
        return {tuple(r) for r in await session.execute(sa.text(_DELIVERED_ON))}


async def _pages(sessions: async_sessionmaker[AsyncSession], channel: str) -> list[str]:
    found: list[str] = []
    after = None
    while True:
        async with sessions() as session:
            rows = await read_store.list_alerts(
                session, visible_to=None, channel=channel, after=after, limit=4
            )
        found += [r["alert_id"] for r in rows[:4]]
        if len(rows) <= 4:
            return found
        after = (rows[3]["sort_at"], rows[3]["alert_id"])


async def test_the_channel_listing_equals_the_alerts_delivered_on_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await truncate_read_models(session)
    await project(sessions, _history(7))
    expected = await _delivered_on(sessions)
    assert {c for c, _, _ in expected} == {"log", "email", "slack"}
    assert await _listed(sessions) == expected

    for channel in ("email", "slack"):
        newest_first = sorted(
            ((at, alert) for c, alert, at in expected if c == channel), reverse=True
        )
        assert await _pages(sessions, channel) == [alert for _, alert in newest_first]

    # Retention removes old deliveries: their alerts leave the channel's listing.
    options = GatewayOptions(keep_timeline_days=0, keep_deliveries_days=30, retention_batch=5)
    removed = await retain(sessions, options, now=_day(70))
    assert removed.deliveries
    remaining = await _delivered_on(sessions)
    assert remaining < expected
    assert await _listed(sessions) == remaining

    # A rebuild's truncate of the read models empties it too.
    async with sessions() as session, session.begin():
        await truncate_read_models(session)
    assert await _listed(sessions) == set()
