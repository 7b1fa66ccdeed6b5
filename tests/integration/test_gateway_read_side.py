"""The read side at scale: metrics aggregated by PostgreSQL equal the Python definitions,
retention rolls up what coverage needs, listings filter by account and link their next page.

The metrics run on random event sequences (merges, deletions, out-of-order arrivals, handoffs
known only by their SLA clock) projected by the real projections into a schema of their own.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_gateway_support import gateway_for, own_schema, project, seeded_gateway

from tandem_api_gateway.adapters import metric_facts, metrics_store, read_store
from tandem_api_gateway.adapters.projection_store import truncate_read_models
from tandem_api_gateway.adapters.tables import activity_days, alert_deliveries, timeline
from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.retention import Removed, retain
from tandem_api_gateway.settings import GatewayOptions
from tandem_shared import events as ev
from tandem_shared.envelope import Envelope

pytestmark = pytest.mark.integration

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HUBSPOT = ev.CrmSystem.HUBSPOT


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The gateway's tables in a schema of this module's own: only its random data in them."""
    async with own_schema(infra, "gw_reads") as found:
        # The listings' plan test reads plans over a few rows, which turn on whether autovacuum
        # happened to analyse them first: keep these tables unanalysed, so the plans are the
        # planner's without statistics every run (the year-sized bench measures real plans).
        async with found.begin() as session:
            for table in ("handoffs", "alerts", "timeline"):
                await session.execute(
                    sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
                )
        yield found


class Events:
    """A random CRM, marketing, routing, SLA and alert history of a dozen accounts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.envelopes: list[Envelope] = []

    def at(self) -> datetime:
        return T0 + timedelta(seconds=self.rng.randrange(60 * 86400))

    def add(self, payload: ev.Model, event_type: str, subject: str | None) -> None:
        self.envelopes.append(
            Envelope.wrap(
                payload, type=event_type, source="/test", subject=subject, id=uuid.uuid4().hex
            )
        )

    def history(self) -> list[Envelope]:
        rng = self.rng
        keys = [f"acct{n}.example" for n in range(12)]
        for n, key in enumerate(keys):
            tier = rng.choice([*ev.Tier, None])
            upsert = ev.AccountUpserted(
                crm=HUBSPOT,
                crm_id=f"c{n}",
                account_key=key,
                tier=tier,
                target_account=rng.choice([None, True, False]),  # the CRM's own TAL flag
                occurred_at=self.at(),
            )
            self.add(upsert, ev.EventType.ACCOUNT_UPSERTED, key)
            if rng.random() < 0.6:
                tal = ev.TalFinalized(
                    account_key=key, tier=rng.choice(list(ev.Tier)), finalized_at=self.at()
                )
                self.add(tal, ev.EventType.TAL_FINALIZED, key)
        for winner, loser in rng.sample(
            [(a, b) for a in range(12) for b in range(12) if a != b], 2
        ):
            merged = ev.RecordsMerged(
                crm=HUBSPOT,
                object_type="company",
                winner_id=f"c{winner}",
                merged_ids=[f"c{loser}"],
                occurred_at=self.at(),
            )
            self.add(merged, ev.EventType.RECORDS_MERGED, None)
        for n in range(150):
            key = rng.choice(keys)
            if rng.random() < 0.5:
                activity = ev.ActivityLogged(
                    crm=HUBSPOT,
                    activity_id=f"act{n}",
                    kind=ev.ActivityKind.CALL,
                    account_key=key,
                    occurred_at=self.at(),
                )
                self.add(activity, ev.EventType.ACTIVITY_LOGGED, key)
            else:
                engagement = ev.EngagementRecorded(
                    engagement_id=f"eng{n}",
                    source="segment",
                    kind=ev.EngagementKind.PAGE_VIEW,
                    account_key=key,
                    occurred_at=self.at(),
                )
                self.add(engagement, ev.EventType.ENGAGEMENT_RECORDED, key)
        for n in range(60):
            self.handoff(f"h{n}", rng.choice(keys))
        for n in range(30):
            self.deal(f"d{n}", rng.choice(keys))
        rng.shuffle(self.envelopes)  # any arrival order must give the same read models
        return self.envelopes

    def handoff(self, handoff_id: str, key: str) -> None:
        rng = self.rng
        start = self.at()
        tier, signal = rng.choice(list(ev.Tier)), rng.choice(list(ev.Signal))
        assignee = rng.choice(["ava.ae", "ben.ae", "mia.marketing"])
        if rng.random() < 0.85:  # the rest are known by their SLA clock alone
            decided = ev.RoutingDecided(
                decision_id=f"d-{handoff_id}",
                handoff_id=handoff_id,
                account_key=key,
                account_name=key,
                tier=tier,
                in_tal=True,
                signal=signal,
                assignee_id=assignee,
                assignee_role=rng.choice(["ae", "sdr", "Marketer", "marketing"]),
                notified_ids=[],
                match=ev.MatchInfo(method="domain"),
                rule_set_version="v1",
                decided_at=start,
            )
            self.add(decided, ev.EventType.ROUTING_DECIDED, key)
        clock = ev.SlaEvent(
            handoff_id=handoff_id,
            account_key=key,
            assignee_id=assignee,
            tier=tier,
            signal=signal,
            started_at=start,
            deadline=start + timedelta(hours=4),
            allowed_seconds=4 * 3600,
            policy_version="v1",
            occurred_at=start,
        )
        self.add(clock, ev.EventType.SLA_STARTED, key)
        fate = rng.random()
        if fate < 0.35:
            touch = start + timedelta(seconds=rng.randrange(1, 4 * 3600))
            met = clock.model_copy(update={"occurred_at": touch, "within_sla": True})
            self.add(met, ev.EventType.SLA_MET, key)
        elif fate < 0.8:
            breached = clock.model_copy(update={"occurred_at": clock.deadline})
            self.add(breached, ev.EventType.SLA_BREACHED, key)
            if rng.random() < 0.5:
                late = start + timedelta(seconds=rng.randrange(4 * 3600, 30 * 3600))
                touched = clock.model_copy(update={"occurred_at": late, "within_sla": False})
                self.add(touched, ev.EventType.SLA_MET, key)
        alert = ev.AlertRequested(
            alert_id=f"a-{handoff_id}",
            kind=ev.AlertKind.HANDOFF,
            recipient_ids=[assignee],
            title="handoff",
            account_key=key,
            requested_at=start,
        )
        self.add(alert, ev.EventType.ALERT_REQUESTED, key)
        delivered = ev.AlertDelivered(
            alert_id=alert.alert_id,
            recipient_id=assignee,
            channel=ev.DeliveryChannel.LOG,
            destination="log",
            attempts=rng.randint(1, 3),
            delivered_at=start + timedelta(seconds=2),
        )
        self.add(delivered, ev.EventType.ALERT_DELIVERED, key)

    def deal(self, crm_id: str, key: str) -> None:
        rng = self.rng
        closed = rng.random() < 0.5
        for _ in range(rng.randint(1, 2)):
            upsert = ev.DealUpserted(
                crm=HUBSPOT,
                crm_id=crm_id,
                account_key=key,
                # Quarters are exact in binary: the reference's float sum in row order equals
                # the database's exact sum.
                amount=rng.choice([None, rng.randrange(1, 400_000) / 4]),
                is_closed=closed,
                is_won=closed and rng.random() < 0.4,
                occurred_at=self.at(),
            )
            self.add(upsert, ev.EventType.DEAL_UPSERTED, key)
        if rng.random() < 0.15:
            gone = ev.RecordDeleted(
                crm=HUBSPOT, object_type="deal", crm_id=crm_id, occurred_at=self.at()
            )
            self.add(gone, ev.EventType.RECORD_DELETED, key)
        if rng.random() < 0.15:
            merged = ev.RecordsMerged(
                crm=HUBSPOT,
                object_type="deal",
                winner_id=f"{crm_id}-w",
                merged_ids=[crm_id],
                occurred_at=self.at(),
            )
            self.add(merged, ev.EventType.RECORDS_MERGED, key)


def _day(n: int) -> datetime:
    return T0 + timedelta(days=n)


PERIODS = [
    (None, None),
    (_day(10), None),
    (None, _day(25) + timedelta(hours=13, minutes=37)),
    (_day(3) + timedelta(hours=5), _day(40)),
    (_day(20), _day(21)),
]


def _scopes(periods: list[tuple[datetime | None, datetime | None]]) -> list[m.Scope]:
    return [
        m.Scope(start=start, end=end, tier=tier, team=team)
        for start, end in periods
        for tier in (None, ev.Tier.T2, ev.Tier.T3)  # tier 3 also holds the facts without one
        for team in (None, *m.Team)
    ]


@pytest.mark.parametrize("seed", [1, 2])
async def test_database_metrics_equal_the_python_definitions(
    sessions: async_sessionmaker[AsyncSession], seed: int
) -> None:
    async with sessions() as session, session.begin():
        await truncate_read_models(session)
    await project(sessions, Events(seed).history())
    for scope in _scopes(PERIODS):
        ours = await metrics_store.alignment_report(sessions, scope)
        async with sessions() as session:
            assert ours == await metric_facts.reference_report(session, scope), scope
    # The random history has what the definitions distinguish, not only empty scopes.
    whole = await _report(sessions, m.Scope())
    assert whole.sla.met and whole.sla.breached and whole.sla.open_breaches
    assert whole.coverage not in (None, 0.0)
    assert whole.in_tal.open_deals + whole.outside_tal.open_deals


async def _report(sessions: async_sessionmaker[AsyncSession], scope: m.Scope) -> m.AlignmentReport:
    return await metrics_store.alignment_report(sessions, scope)


async def test_retention_rolls_up_what_coverage_needs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await truncate_read_models(session)
    await project(sessions, Events(3).history())
    # Periods on day boundaries (what a day's roll-up answers exactly), across the cutoff.
    days = [(None, None), (_day(0), _day(20)), (_day(10), _day(45)), (_day(30), None)]
    scopes = [m.Scope(start=s, end=e, team=t) for s, e in days for t in (None, *m.Team)]
    before = [(await _report(sessions, s)).coverage for s in scopes]
    deliveries = await _count(sessions, alert_deliveries)
    options = GatewayOptions(keep_timeline_days=40, keep_deliveries_days=40, retention_batch=7)
    async with sessions() as session:
        newest = await session.scalar(sa.select(sa.func.max(timeline.c.at)))
    now = _day(70)  # after the newest entry (about day 61): ages count back from that entry
    removed = await retain(sessions, options, now=now)
    assert removed.timeline > 7 and removed.deliveries > 7  # several batches
    assert [(await _report(sessions, s)).coverage for s in scopes] == before
    async with sessions() as session:
        oldest = await session.scalar(sa.select(sa.func.min(timeline.c.at)))
        rolled = await session.scalar(sa.text("SELECT sum(deliveries) FROM delivery_days"))
        attempts = await session.scalar(sa.text("SELECT sum(attempts) FROM delivery_days"))
    assert oldest is not None and newest is not None
    assert oldest >= newest - timedelta(days=40) > oldest - timedelta(days=1)
    assert rolled == removed.deliveries
    assert deliveries - removed.deliveries == await _count(sessions, alert_deliveries)
    assert attempts >= rolled
    assert await _count(sessions, activity_days) > 0
    assert await retain(sessions, options, now=now) == Removed()  # nothing left past it


async def _count(sessions: async_sessionmaker[AsyncSession], table: sa.Table) -> int:
    async with sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_handoffs_filter_by_account_and_link_their_next_page(infra: Infra) -> None:
    async with seeded_gateway(infra, uuid.uuid4().hex[:8]) as seeded:
        app = create_app(
            gateway=gateway_for(seeded.settings, seeded.sessions), runtime_getter=lambda: None
        )
        s = seeded.scenario
        headers = {"Authorization": f"Bearer {seeded.keys['lea.leader']}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            found, path = [], f"/v1/handoffs?account_key={s.acme}&limit=1"
            while path is not None:
                page = (await client.get(path, headers=headers)).json()
                found += page["items"]
                path = page["next"]
                assert (path is None) == (page["next_cursor"] is None)
            everything = await client.get("/v1/handoffs", headers=headers, params={"limit": 200})
            breaches = await client.get(
                "/v1/breaches", headers=headers, params={"account_key": s.globex}
            )
    assert [h["handoff_id"] for h in found] == [s.open_handoff, s.ava_handoff]  # newest first
    assert {h["account_key"] for h in found} == {s.acme}
    assert {s.ben_handoff, *(h["handoff_id"] for h in found)} <= {
        h["handoff_id"] for h in everything.json()["items"]
    }
    assert [h["handoff_id"] for h in breaches.json()["items"]] == [s.ben_handoff]


_HANDOFF_FILTERS = [
    ("tier", "1", "tier"),
    ("signal", "meeting_request", "signal"),
    ("assignee", "ava.ae", "assignee_id"),
    ("account_key", "acct1.example", "account_key"),
    ("outcome", "running", "sla_outcome"),
]
# A listing, its filters, and the index that must serve both the filter and the order.
LISTINGS = [
    *(
        ("handoffs", {name: value}, f"handoffs_by_{column}")
        for name, value, column in _HANDOFF_FILTERS
    ),
    ("handoffs", {"outcome": "breached", "after": (T0, "h9")}, "handoffs_by_sla_outcome"),
    ("handoffs", {}, "handoffs_sort"),
    ("alerts", {"kind": "handoff"}, "alerts_by_kind"),
    ("alerts", {"account_key": "acct1.example", "after": (T0, "a-h9")}, "alerts_by_account_key"),
    ("timeline", {"account_key": "acct1.example", "after": (T0, 1, "x")}, "timeline_account"),
]


@pytest.mark.parametrize(("listing", "filters", "index"), LISTINGS)
async def test_each_listing_reads_its_index_in_its_order(
    sessions: async_sessionmaker[AsyncSession],
    listing: str,
    filters: dict[str, object],
    index: str,
) -> None:
    engine = sessions.kw["bind"]
    seen: list[tuple[str, object]] = []

    def capture(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        seen.append((statement, params))

    list_page = {
        "handoffs": read_store.list_handoffs,
        "alerts": read_store.list_alerts,
        "timeline": read_store.list_timeline,
    }[listing]
    async with sessions() as session:
        # The tables are tiny: without this the planner would rather read them whole, or
        # through a bitmap and a sort of the few rows (as it may once autovacuum analysed them).
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        await session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            await list_page(session, visible_to=None, limit=50, **filters)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
        statement, params = seen[-1]
        connection = await session.connection()
        plan = (await connection.exec_driver_sql(f"EXPLAIN {statement}", params)).all()
    lines = "\n".join(line for (line,) in plan)
    assert f"Index Scan Backward using {index} " in lines and "Sort" not in lines, lines
