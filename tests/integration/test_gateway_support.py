"""Helpers of the gateway's integration tests: a seeded scenario, keys, an app on the database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from tandem_api_gateway.adapters import key_store
from tandem_api_gateway.api.context import Gateway
from tandem_api_gateway.domain.api_keys import generate_api_key
from tandem_api_gateway.domain.authz import Role
from tandem_api_gateway.feed import Feed, FeedListener
from tandem_api_gateway.main import MIGRATIONS, SCHEMA
from tandem_api_gateway.projections import Projector
from tandem_api_gateway.settings import GatewaySettings
from tandem_shared import events as ev
from tandem_shared import topics
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.db import create_engine, migrate, session_factory
from tandem_shared.envelope import Envelope
from tandem_shared.local.embedded import free_port
from tandem_shared.outbox import claim_inbox
from tandem_shared.uow import unit_of_work

NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
# The person behind each role's key in the API tests.
PEOPLE = {
    Role.REVOPS_ADMIN: "lea.leader",
    Role.MARKETING: "mia.marketing",
    Role.SALES: "sam.manager",
    Role.REP: "ava.ae",
}
ROOT = Path(__file__).resolve().parents[2]


async def migrate_gateway(infra: Infra) -> None:
    """Apply the gateway's migrations to the session database (idempotent)."""
    await migrate(settings=infra.settings().database, schema=SCHEMA, script_location=MIGRATIONS)


def gateway_settings(infra: Infra, **gateway: object) -> GatewaySettings:
    """Settings of a gateway under test, pointing at the session's broker and database."""
    base = infra.settings()
    settings = GatewaySettings(**{**base.model_dump(), "env": "test"})
    if gateway:
        options = settings.gateway.model_copy(update=gateway)
        settings = settings.model_copy(update={"gateway": options})
    return settings


def gateway_for(
    settings: GatewaySettings, sessions: async_sessionmaker[AsyncSession], now: datetime = NOW
) -> Gateway:
    """A Gateway on the test database with a fixed clock."""
    return Gateway(settings=settings, sessions=sessions, clock=lambda: now)


@contextlib.asynccontextmanager
async def served_over_http(app: ASGIApp) -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def feed_listening(settings: GatewaySettings, feed: Feed) -> AsyncIterator[None]:
    """Run a FeedListener (LISTEN on the database) into the feed while the block runs."""
    listener = FeedListener(dsn=listen_dsn(settings.database.url), feed=feed)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), timeout=10)
        yield
    finally:
        listener.stop()
        await task


@dataclass
class Seeded:
    """A migrated gateway database with a projected scenario and a key per person of PEOPLE."""

    settings: GatewaySettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    scenario: Scenario
    keys: dict[str, str]  # person id -> key (ben.ae, a second rep, included)


@contextlib.asynccontextmanager
async def seeded_gateway(infra: Infra, tag: str, **gateway: object) -> AsyncIterator[Seeded]:
    """Migrate, project the scenario tagged `tag`, issue keys; dispose of the engine after."""
    await migrate_gateway(infra)
    settings = gateway_settings(infra, **gateway)
    engine = create_engine(settings.database, schema=SCHEMA)
    sessions = session_factory(engine)
    try:
        scenario = build_scenario(tag)
        await project(sessions, scenario.all())
        people = [*PEOPLE.items(), (Role.REP, "ben.ae")]
        keys = {p: await issue_key(sessions, settings, r, p) for r, p in people}
        yield Seeded(settings, engine, sessions, scenario, keys)
    finally:
        await engine.dispose()


async def issue_key(
    sessions: async_sessionmaker[AsyncSession], settings: GatewaySettings, role: Role, person: str
) -> str:
    """Store a new key for a person and role; return its plaintext."""
    issued = generate_api_key(pepper=settings.pepper)
    async with sessions() as session, session.begin():
        await key_store.add_key(
            session, key_id=issued.key_id, key_hash=issued.key_hash, role=role, person_id=person
        )
    return issued.plaintext


@contextlib.asynccontextmanager
async def own_schema(infra: Infra, prefix: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The gateway's tables in a schema of their own (its random data and planner statistics
    apart from other modules'), dropped at the end."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    database = infra.settings().database
    await migrate(settings=database, schema=schema, script_location=MIGRATIONS)
    engine = create_engine(database, schema=schema)
    try:
        yield session_factory(engine)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def project(sessions: async_sessionmaker[AsyncSession], envelopes: list[Envelope]) -> None:
    """Apply envelopes through the projector exactly as the consumer runtime does."""
    projector = Projector()
    for envelope in envelopes:
        async with unit_of_work(sessions) as uow:
            if await claim_inbox(uow.session, event_id=envelope.id, topic="test"):
                await projector(envelope, uow)


def _wrap(payload: ev.Model, event_type: str, subject: str | None, event_id: str) -> Envelope:
    return Envelope.wrap(
        payload, type=event_type, source="/test", subject=subject, id=event_id, time=NOW
    )


@dataclass
class Scenario:
    """Two TAL accounts, a handoff per rep (one met, one breached), alerts with deliveries."""

    tag: str
    by_topic: dict[str, list[Envelope]] = field(default_factory=dict)

    @property
    def acme(self) -> str:
        return f"acme-{self.tag}.com"

    @property
    def globex(self) -> str:
        return f"globex-{self.tag}.com"

    @property
    def ava_handoff(self) -> str:
        return f"h-ava-{self.tag}"

    @property
    def ben_handoff(self) -> str:
        return f"h-ben-{self.tag}"

    @property
    def open_handoff(self) -> str:
        return f"h-open-{self.tag}"

    @property
    def ava_alert(self) -> str:
        return f"a-ava-{self.tag}"

    @property
    def ben_alert(self) -> str:
        return f"a-ben-{self.tag}"

    @property
    def ava_action(self) -> str:
        return f"act-ava-{self.tag}"

    def add(self, topic: str, payload: ev.Model, event_type: str, subject: str | None) -> Envelope:
        envelope = _wrap(payload, event_type, subject, f"{self.tag}-{len(self.all())}")
        self.by_topic.setdefault(topic, []).append(envelope)
        return envelope

    def add_handoff(
        self,
        handoff: str,
        account_key: str,
        rep: str,
        *,
        tier: ev.Tier = ev.Tier.T1,
        signal: ev.Signal = ev.Signal.MEETING_REQUEST,
        decided_at: datetime,
        notified: tuple[str, ...] = (),
        crm_url: str | None = None,
    ) -> Envelope:
        """Add the routing decision of a handoff to a rep."""
        decided = ev.RoutingDecided(
            decision_id=f"d-{handoff}",
            handoff_id=handoff,
            account_key=account_key,
            account_name=account_key.split("-")[0].title(),
            tier=tier,
            in_tal=True,
            signal=signal,
            assignee_id=rep,
            assignee_role="ae",
            notified_ids=list(notified),
            crm_url=crm_url,
            match=ev.MatchInfo(method="domain"),
            rule_set_version="v1",
            decided_at=decided_at,
        )
        return self.add(topics.ROUTING, decided, ev.EventType.ROUTING_DECIDED, account_key)

    def all(self) -> list[Envelope]:
        return [e for items in self.by_topic.values() for e in items]


HUBSPOT_LEAD_URL = "https://app.hubspot.com/contacts/62515/record/0-1/501"
SALESFORCE_ACCOUNT_URL = "https://acme.lightning.force.com/lightning/r/Account/001GLOBEX/view"


def build_scenario(tag: str) -> Scenario:
    """Build the seeded scenario; the SLA of Ben's handoff is published before its decision."""
    s = Scenario(tag)
    t0 = NOW - timedelta(hours=3)
    for key, tier, name in ((s.acme, ev.Tier.T1, "Acme"), (s.globex, ev.Tier.T2, "Globex")):
        tal = ev.TalFinalized(
            account_key=key, name=name, tier=tier, ae_id="ava.ae", finalized_at=t0
        )
        s.add(topics.TAL, tal, ev.EventType.TAL_FINALIZED, key)
        engagement = ev.EngagementRecorded(
            engagement_id=f"eng-{key}",
            source="segment",
            kind=ev.EngagementKind.CONTENT_DOWNLOAD,
            name="Whitepaper Downloaded",
            account_key=key,
            occurred_at=t0 + timedelta(minutes=5),
        )
        s.add(topics.ENGAGEMENT, engagement, ev.EventType.ENGAGEMENT_RECORDED, key)
        s.add(
            topics.CRM,
            ev.ActivityLogged(
                crm=ev.CrmSystem.HUBSPOT,
                activity_id=f"act-{key}",
                kind=ev.ActivityKind.CALL,
                account_key=key,
                actor_id="ava.ae",
                occurred_at=t0 + timedelta(minutes=50),
            ),
            ev.EventType.ACTIVITY_LOGGED,
            key,
        )
    s.add(
        topics.INTENT,
        ev.IntentObserved(
            provider="bombora", account_key=s.acme, topic="ABM", score=81, observed_at=t0
        ),
        ev.EventType.INTENT_OBSERVED,
        s.acme,
    )
    s.add(
        topics.CRM,
        ev.DealUpserted(
            crm=ev.CrmSystem.HUBSPOT,
            crm_id=f"deal-{tag}",
            account_key=s.acme,
            amount=50_000,
            is_closed=False,
            occurred_at=t0,
        ),
        ev.EventType.DEAL_UPSERTED,
        s.acme,
    )
    # Ben's breach is published before the routing decision it belongs to.
    breached = _sla(s.ben_handoff, s.globex, "ben.ae", ev.Tier.T2, t0, at=t0 + timedelta(hours=1))
    s.add(topics.SLA, breached, ev.EventType.SLA_BREACHED, s.globex)
    for handoff, key, rep, tier, decided_at in (
        (s.ava_handoff, s.acme, "ava.ae", ev.Tier.T1, t0),
        (s.ben_handoff, s.globex, "ben.ae", ev.Tier.T2, t0),
        (s.open_handoff, s.acme, "ava.ae", ev.Tier.T1, NOW - timedelta(minutes=10)),
    ):
        s.add_handoff(
            handoff,
            key,
            rep,
            tier=tier,
            decided_at=decided_at,
            notified=("sam.manager",),
            crm_url=HUBSPOT_LEAD_URL if handoff == s.open_handoff else None,
        )
        started = _sla(handoff, key, rep, tier, decided_at)
        s.add(topics.SLA, started, ev.EventType.SLA_STARTED, key)
    conflict = ev.RoutingConflict(
        account_key=s.acme,
        handoff_id=s.open_handoff,
        candidates={"crm": "ava.ae", "territory": "ben.ae"},
        reason="CRM owner and territory disagree",
        rule_set_version="v1",
        occurred_at=NOW - timedelta(minutes=10),
    )
    s.add(topics.ROUTING, conflict, ev.EventType.ROUTING_CONFLICT, s.acme)
    reassign = ev.HandoffReassignRequested(
        handoff_id=s.ben_handoff,
        account_key=s.globex,
        previous_assignee_id="ben.ae",
        reason="on leave",
        requested_at=t0 + timedelta(minutes=30),
    )
    s.add(topics.HANDOFF_ACTIONS, reassign, ev.EventType.HANDOFF_REASSIGN_REQUESTED, s.globex)
    met = _sla(s.ava_handoff, s.acme, "ava.ae", ev.Tier.T1, t0, at=t0 + timedelta(minutes=50))
    met = met.model_copy(update={"within_sla": True})
    s.add(topics.SLA, met, ev.EventType.SLA_MET, s.acme)
    asked = ev.HandoffActionRequested(
        action_id=s.ava_action,
        handoff_id=s.ava_handoff,
        action=ev.HandoffAction.ACKNOWLEDGE,
        actor_id="ava.ae",
        via="api",
        requested_at=t0 + timedelta(minutes=5),
    )
    s.add(topics.HANDOFF_ACTIONS, asked, ev.EventType.HANDOFF_ACTION_REQUESTED, s.acme)
    links = {s.ava_alert: HUBSPOT_LEAD_URL, s.ben_alert: SALESFORCE_ACCOUNT_URL}
    for alert_id, key, rep in ((s.ava_alert, s.acme, "ava.ae"), (s.ben_alert, s.globex, "ben.ae")):
        request = ev.AlertRequested(
            alert_id=alert_id,
            kind=ev.AlertKind.HANDOFF,
            recipient_ids=[rep],
            title=f"Meeting request from {key}",
            account_key=key,
            crm_url=links[alert_id],
            requested_at=t0,
        )
        s.add(topics.ALERT_REQUESTS, request, ev.EventType.ALERT_REQUESTED, key)
        delivered = ev.AlertDelivered(
            alert_id=alert_id,
            recipient_id=rep,
            channel=ev.DeliveryChannel.LOG,
            destination="log",
            attempts=1,
            delivered_at=t0 + timedelta(seconds=2),
        )
        s.add(topics.ALERT_DELIVERIES, delivered, ev.EventType.ALERT_DELIVERED, key)
    return s


def _sla(
    handoff: str, key: str, rep: str, tier: ev.Tier, start: datetime, at: datetime | None = None
) -> ev.SlaEvent:
    return ev.SlaEvent(
        handoff_id=handoff,
        account_key=key,
        assignee_id=rep,
        tier=tier,
        signal=ev.Signal.MEETING_REQUEST,
        started_at=start,
        deadline=start + timedelta(hours=1),
        allowed_seconds=3600,
        policy_version="v1",
        occurred_at=at or start,
    )


def sessions_of(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
