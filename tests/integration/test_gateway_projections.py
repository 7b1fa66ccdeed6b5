"""The gateway's projections over the real broker and database, then a rebuild from scratch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from test_gateway_support import Scenario, build_scenario, gateway_settings, migrate_gateway

from kafka_tools import produce_envelopes
from tandem_api_gateway.adapters.tables import READ_MODELS, accounts, handoffs
from tandem_api_gateway.feed import Feed, FeedListener
from tandem_api_gateway.main import SCHEMA, add_projections
from tandem_api_gateway.rebuild import rebuild
from tandem_shared.bootstrap import Infra as ServiceInfra
from tandem_shared.bootstrap import build_infra, listen_dsn
from tandem_shared.consumer import ConsumerLoop

pytestmark = pytest.mark.integration


class Stack:
    def __init__(self, service: ServiceInfra, loop: ConsumerLoop, feed: Feed) -> None:
        self.service = service
        self.loop = loop
        self.feed = feed
        self.task: asyncio.Task[None] | None = None

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.service.sessions

    @property
    def engine(self) -> AsyncEngine:
        return self.service.engine


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    """The gateway's projection consumer (a group of its own) and feed listener, once per module."""
    await migrate_gateway(infra)
    settings = gateway_settings(infra)
    service = build_infra(settings, schema=SCHEMA, with_relay=False)
    group = f"api-gateway-test-{id(service):x}"
    loop = add_projections(service, group=group)
    feed = Feed()
    listener = FeedListener(dsn=listen_dsn(settings.database.url), feed=feed)
    await service.producer.start()
    stack = Stack(service, loop, feed)
    stack.task = asyncio.create_task(loop.run())
    listening = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.listening.wait(), timeout=10)
    try:
        yield stack
    finally:
        loop.stop()
        listener.stop()
        await asyncio.gather(stack.task, listening, return_exceptions=True)
        await service.producer.stop()
        await service.engine.dispose()


async def _publish(infra: Infra, scenario: Scenario) -> None:
    for topic, envelopes in scenario.by_topic.items():
        # Every event twice: at-least-once delivery must not double anything.
        await produce_envelopes(infra.bootstrap_servers, topic, envelopes + envelopes)


async def _snapshot(sessions: async_sessionmaker[AsyncSession], s: Scenario) -> dict[str, Any]:
    """Every read model row of this scenario's accounts, in a stable order."""
    keys = [s.acme, s.globex]
    found: dict[str, Any] = {}
    async with sessions() as session:
        for table in READ_MODELS:
            if "account_key" in table.c:
                where = table.c.account_key.in_(keys)
            else:
                where = table.c.alert_id.in_([s.ava_alert, s.ben_alert])
            query = sa.select(table).where(where).order_by(*table.primary_key.columns)
            found[table.name] = [dict(r) for r in (await session.execute(query)).mappings()]
    return found


async def _wait_for(sessions: async_sessionmaker[AsyncSession], s: Scenario) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            snap = await _snapshot(sessions, s)
            breached = [h for h in snap["handoffs"] if h["sla_outcome"] == "breached"]
            if (
                len(snap["handoffs"]) == 3
                and breached
                and breached[0]["decided_at"] is not None
                and len(snap["alert_deliveries"]) == 2
                and len(snap["timeline"]) >= 17
                and len(snap["deals"]) == 1
                and [a["tal_status"] for a in snap["accounts"]] == ["finalized"] * 2
                and any(a["intent"] for a in snap["accounts"])
            ):
                return snap
            await asyncio.sleep(0.2)


async def test_projections_build_the_read_models_and_a_rebuild_yields_the_same(
    infra: Infra, stack: Stack, unique: str
) -> None:
    scenario = build_scenario(unique)
    async with stack.feed.subscribe() as feed:
        await _publish(infra, scenario)
        before = await _wait_for(stack.sessions, scenario)
        first = await asyncio.wait_for(anext(feed), timeout=10)
    assert first["kind"] in ("handoff", "breach", "alert")

    by_key = {a["account_key"]: a for a in before["accounts"]}
    acme = by_key[scenario.acme]
    assert (acme["tier"], acme["in_tal"], acme["tal_status"]) == ("1", True, "finalized")
    assert acme["engagement_count"] == 1  # published twice, counted once
    assert acme["engagement_score"] == 8.0
    assert acme["intent"]["ABM"]["score"] == 81
    assert acme["last_sales_activity_at"] is not None
    assert by_key[scenario.globex]["tier"] == "2"

    handoff = {h["handoff_id"]: h for h in before["handoffs"]}
    ben = handoff[scenario.ben_handoff]  # its breach arrived before its decision
    assert (ben["sla_outcome"], ben["sla_status"], ben["assignee_id"]) == (
        "breached",
        "breached",
        "ben.ae",
    )
    assert ben["notified_ids"] == ["sam.manager"]
    ava = handoff[scenario.ava_handoff]
    assert ava["sla_outcome"] == "met"
    assert (ava["first_touch_at"] - ava["decided_at"]).total_seconds() == 50 * 60
    assert handoff[scenario.open_handoff]["sla_outcome"] == "running"
    titles = {(t["account_key"], t["kind"], t["title"]) for t in before["timeline"]}
    assert (
        scenario.acme,
        "routing",
        "Routing conflict: CRM owner and territory disagree",
    ) in titles
    assert (scenario.globex, "routing", "Reassignment requested by ben.ae: on leave") in titles
    assert {(d["alert_id"], d["channel"], d["status"]) for d in before["alert_deliveries"]} == {
        (scenario.ava_alert, "log", "delivered"),
        (scenario.ben_alert, "log", "delivered"),
    }

    stack.loop.stop()
    assert stack.task is not None
    await stack.task
    group = await rebuild(
        sessions=stack.sessions,
        consumer_for=lambda g: add_projections(stack.service, group=g),
        default_group=stack.loop.group,
        within_seconds=120,
    )
    assert group == f"{stack.loop.group}.rebuild-1"
    after = await _snapshot(stack.sessions, scenario)
    assert after == before


async def test_read_models_use_event_times_only(stack: Stack) -> None:
    # A rebuild can only reproduce rows if no column holds the wall clock of projection.
    for table in (accounts, handoffs):
        defaults = [c.name for c in table.c if c.server_default is not None]
        assert all("now" not in str(table.c[name].server_default.arg) for name in defaults)
