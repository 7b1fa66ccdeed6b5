"""The gateway's projections over the real broker and database, then a rebuild from scratch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from in_process import running
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from test_gateway_support import (
    NOW,
    Scenario,
    build_scenario,
    gateway_for,
    gateway_settings,
    issue_key,
    migrate_gateway,
    project,
)

from kafka_tools import produce_envelopes
from tandem_api_gateway.adapters import read_store
from tandem_api_gateway.adapters.tables import READ_MODELS, accounts, crm_accounts, deals
from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain.authz import Role
from tandem_api_gateway.feed import Feed
from tandem_api_gateway.main import add_projections, build_service
from tandem_api_gateway.rebuild import rebuild
from tandem_shared import events as ev
from tandem_shared import topics
from tandem_shared.bootstrap import Infra as ServiceInfra
from tandem_shared.consumer import ConsumerLoop
from tandem_shared.envelope import Envelope

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
    service = build_service(
        gateway_settings(infra), group=f"api-gateway-test-{uuid.uuid4().hex[:8]}", with_relay=False
    )
    assert service.projections is not None
    async with running(service.infra) as tasks:
        stack = Stack(service.infra, service.projections, service.gateway.feed)
        stack.task = tasks.task_of(service.projections)
        await asyncio.wait_for(service.listener.listening.wait(), timeout=10)
        yield stack


@dataclass
class Merges:
    """HubSpot merges of two companies and two pairs of duplicate deals, before their records."""

    tag: str
    envelopes: list[Envelope] = field(default_factory=list)

    @property
    def survivor(self) -> str:
        return f"initech-{self.tag}.com"

    @property
    def merged_away(self) -> str:
        return f"initech-old-{self.tag}.com"

    def add(self, payload: ev.Model, event_type: str) -> None:
        subject = getattr(payload, "account_key", None)
        self.envelopes.append(
            Envelope.wrap(
                payload,
                type=event_type,
                source="/test",
                subject=subject,
                id=f"m-{self.tag}-{len(self.envelopes)}",
                time=NOW,
            )
        )


def build_merges(tag: str) -> Merges:
    """Each merge is published before the records it merges: any order must give the same rows."""
    m = Merges(tag)
    t0 = NOW - timedelta(hours=2)
    hubspot = ev.CrmSystem.HUBSPOT
    for kind, winner, loser in (
        ("deal", f"open-{tag}", f"open-dup-{tag}"),
        ("deal", f"won-{tag}", f"won-dup-{tag}"),
        ("company", f"co-{tag}", f"co-dup-{tag}"),
    ):
        merged = ev.RecordsMerged(
            crm=hubspot, object_type=kind, winner_id=winner, merged_ids=[loser], occurred_at=NOW
        )
        m.add(merged, ev.EventType.RECORDS_MERGED)
    for crm_id, key, tier in (
        (f"co-dup-{tag}", m.merged_away, ev.Tier.T3),
        (f"co-{tag}", m.survivor, ev.Tier.T2),
    ):
        company = ev.AccountUpserted(
            crm=hubspot, crm_id=crm_id, account_key=key, tier=tier, occurred_at=t0
        )
        m.add(company, ev.EventType.ACCOUNT_UPSERTED)
    for crm_id, key, amount, closed in (
        (f"open-{tag}", m.survivor, 30_000, False),
        (f"open-dup-{tag}", m.survivor, 30_000, False),
        (f"won-{tag}", m.survivor, 30_000, True),
        (f"won-dup-{tag}", m.survivor, 30_000, True),
        (f"other-{tag}", m.merged_away, 5_000, False),  # a deal of its own, at the merged-away
    ):
        deal = ev.DealUpserted(
            crm=hubspot,
            crm_id=crm_id,
            account_key=key,
            amount=amount,
            is_closed=closed,
            is_won=closed,
            occurred_at=t0,
        )
        m.add(deal, ev.EventType.DEAL_UPSERTED)
    call = ev.ActivityLogged(
        crm=hubspot,
        activity_id=f"call-{tag}",
        kind=ev.ActivityKind.CALL,
        account_key=m.merged_away,
        occurred_at=t0,
    )
    m.add(call, ev.EventType.ACTIVITY_LOGGED)
    return m


async def _publish(infra: Infra, scenario: Scenario, merges: Merges) -> None:
    for topic, envelopes in [*scenario.by_topic.items(), (topics.CRM, merges.envelopes)]:
        # Every event twice: at-least-once delivery must not double anything.
        await produce_envelopes(infra.bootstrap_servers, topic, envelopes + envelopes)


async def _api_get(stack: Stack, infra: Infra, path: str, **params: str) -> Any:
    """GET a gateway path as a sales manager, over the projections so far."""
    settings = gateway_settings(infra)
    key = await issue_key(stack.sessions, settings, Role.SALES, "sam.manager")
    app = create_app(gateway=gateway_for(settings, stack.sessions), runtime_getter=lambda: None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


async def _outside_tal_pipeline(stack: Stack, infra: Infra) -> dict[str, Any]:
    """The alignment metrics' pipeline outside the TAL, over every deal projected so far."""
    report = await _api_get(stack, infra, "/v1/metrics/alignment", period="all")
    segment: dict[str, Any] = report["pipeline_outside_tal"]
    return segment


async def _snapshot(
    sessions: async_sessionmaker[AsyncSession], s: Scenario, m: Merges
) -> dict[str, Any]:
    """Every read model row of this scenario's accounts, in a stable order."""
    keys = [s.acme, s.globex, m.survivor, m.merged_away]
    found: dict[str, Any] = {}
    async with sessions() as session:
        for table in READ_MODELS:
            if "account_key" in table.c:
                where = table.c.account_key.in_(keys)
            elif "person_id" in table.c:  # run-time availability: the scenario's people
                where = table.c.person_id.in_(["ava.ae", "ben.ae"])
            else:
                where = table.c.alert_id.in_([s.ava_alert, s.ben_alert])
            query = sa.select(table).where(where).order_by(*table.primary_key.columns)
            found[table.name] = [dict(r) for r in (await session.execute(query)).mappings()]
    return found


async def _wait_for(
    sessions: async_sessionmaker[AsyncSession], s: Scenario, m: Merges
) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            snap = await _snapshot(sessions, s, m)
            merged = [d for d in snap["deals"] if d["merged_into"]]
            linked = [c for c in snap["crm_accounts"] if c["account_key"]]
            breached = [h for h in snap["handoffs"] if h["sla_outcome"] == "breached"]
            if (
                len(snap["handoffs"]) == 3
                and breached
                and breached[0]["decided_at"] is not None
                and len(snap["alert_deliveries"]) == 2
                and len(snap["timeline"]) >= 17
                and len(snap["deals"]) == 6
                and (len(merged), len(linked)) == (2, 2)
                and any(a["merged_into"] for a in snap["accounts"])
                and [a["tal_status"] for a in snap["accounts"]] == [*["finalized"] * 2, None, None]
                and any(a["intent"] for a in snap["accounts"])
            ):
                return snap
            await asyncio.sleep(0.2)


async def test_projections_build_the_read_models_and_a_rebuild_yields_the_same(
    infra: Infra, stack: Stack, unique: str
) -> None:
    scenario = build_scenario(unique)
    merges = build_merges(unique)
    pipeline = await _outside_tal_pipeline(stack, infra)
    async with stack.feed.subscribe() as feed:
        await _publish(infra, scenario, merges)
        before = await _wait_for(stack.sessions, scenario, merges)
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

    await _assert_merged_once(stack, infra, merges, before, pipeline)

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
    after = await _snapshot(stack.sessions, scenario, merges)
    assert after == before


async def _assert_merged_once(
    stack: Stack, infra: Infra, m: Merges, snap: dict[str, Any], pipeline: dict[str, Any]
) -> None:
    merged = {d["deal_id"]: d["merged_into"] for d in snap["deals"] if d["merged_into"]}
    assert merged == {
        f"hubspot:open-dup-{m.tag}": f"hubspot:open-{m.tag}",
        f"hubspot:won-dup-{m.tag}": f"hubspot:won-{m.tag}",
    }
    by_key = {a["account_key"]: a for a in snap["accounts"]}
    assert by_key[m.merged_away]["merged_into"] == m.survivor
    assert by_key[m.survivor]["merged_into"] is None
    # Asked for by its old key, the merged-away account says where it went.
    gone = await _api_get(stack, infra, f"/v1/accounts/{m.merged_away}")
    survivor = await _api_get(stack, infra, f"/v1/accounts/{m.survivor}")
    assert (gone["merged_into"], survivor["merged_into"]) == (m.survivor, None)
    async with stack.sessions() as session:
        listed = await read_store.list_accounts(
            session, tier=None, in_tal=None, after=None, limit=10_000
        )
        measured = {r["account_key"]: r for r in await read_store.account_facts(session)}
        tiers = {r["deal_id"]: r["tier"] for r in await read_store.deal_facts(session)}
    assert m.survivor in {r["account_key"] for r in listed}
    assert m.merged_away not in {r["account_key"] for r in listed} | set(measured)
    # The merged-away account's activity and deals now count for the survivor.
    assert len(measured[m.survivor]["sales_activity_at"]) == 1
    assert tiers[f"hubspot:other-{m.tag}"] == tiers[f"hubspot:open-{m.tag}"] == "2"
    assert f"hubspot:open-dup-{m.tag}" not in tiers
    # Two duplicates merged into their winners: the pipeline counts each deal once (the
    # merged-away account's own deal is the second open one).
    now = await _outside_tal_pipeline(stack, infra)
    assert now["open_deals"] - pipeline["open_deals"] == 2
    assert now["open_amount"] - pipeline["open_amount"] == 35_000
    assert (now["closed"] - pipeline["closed"], now["won"] - pipeline["won"]) == (1, 1)


async def _merge_rows(sessions: async_sessionmaker[AsyncSession], m: Merges) -> list[str]:
    """The rows a merge case wrote, with its tag taken out, so two cases can be compared."""
    keys = [m.survivor, m.merged_away]
    rows: list[str] = []
    async with sessions() as session:
        for table in (accounts, deals, crm_accounts):
            query = sa.select(table).where(table.c.account_key.in_(keys))
            found = (await session.execute(query.order_by(*table.primary_key.columns))).mappings()
            rows += [str(dict(r)).replace(m.tag, "TAG") for r in found]
    return rows


async def test_merges_give_the_same_rows_before_or_after_their_records(
    stack: Stack, unique: str
) -> None:
    early, late = build_merges(f"{unique}a"), build_merges(f"{unique}b")
    await project(stack.sessions, early.envelopes)  # merges first, as built
    await project(stack.sessions, late.envelopes[3:] + late.envelopes[:3])  # merges last
    rows = await _merge_rows(stack.sessions, early)
    assert rows == await _merge_rows(stack.sessions, late)
    assert sum("'merged_into': 'hubspot:" in r for r in rows) == 2
    assert sum("'merged_into': 'initech-TAG.com'" in r for r in rows) == 1


async def test_read_models_use_event_times_only(stack: Stack) -> None:
    # A rebuild can only reproduce rows if no column holds the wall clock of projection.
    for table in READ_MODELS:
        defaults = [c.name for c in table.c if c.server_default is not None]
        assert all("now" not in str(table.c[name].server_default.arg) for name in defaults)
