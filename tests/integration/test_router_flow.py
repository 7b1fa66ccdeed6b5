"""The router over the real broker and database, as two replicas of one consumer group.

Every test keys its events by account domains unique to it, and reads the router's output from a
collector that follows the routing and alert-request topics from the beginning.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
import yaml
from aiokafka import AIOKafkaConsumer

from kafka_tools import produce_envelopes
from tandem_router import commands
from tandem_router.adapters import repository
from tandem_router.adapters.tables import handoffs, routed_events
from tandem_router.app import create_app
from tandem_router.config import SCHEMA, RouterConfig, load_people
from tandem_router.domain.model import AccountState, Assignment
from tandem_router.domain.rules import parse_rules
from tandem_router.handlers import TOPICS, build_handler
from tandem_router.main import MIGRATIONS, seed
from tandem_shared import topics
from tandem_shared.bootstrap import Infra, build_infra
from tandem_shared.consumer import UnitOfWork
from tandem_shared.db import migrate
from tandem_shared.directory import Person, Role
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AlertKind,
    AlertRequested,
    EngagementKind,
    EngagementRecorded,
    EventType,
    HandoffReassignRequested,
    IntentObserved,
    RoutingConflict,
    RoutingDecided,
    Signal,
    SlaEvent,
    TalFinalized,
    Tier,
)
from tandem_shared.settings import OutboxSettings

pytestmark = pytest.mark.integration

# A pool of its own for the load test, so other tests' handoffs never use its capacity.
LOAD_REPS = {"lara.sdr": (40, 1), "liam.sdr": (30, 2), "lena.sdr": (20, 1)}  # capacity, weight
LOAD_TERRITORY = "load-test"


def router_config(config_dir: Any) -> RouterConfig:
    """The example configuration plus the load-test reps and their pool."""
    directory = load_people(config_dir)
    load_reps = tuple(
        Person(
            id=rep,
            name=rep.split(".")[0].title(),
            email=f"{rep}@tandem.example",
            role=Role.SDR,
            team="sales",
            manager_id="sam.manager",
            capacity=capacity,
            weight=weight,
        )
        for rep, (capacity, weight) in LOAD_REPS.items()
    )
    directory = directory.model_copy(update={"people": (*directory.people, *load_reps)})
    doc = yaml.safe_load((config_dir / "routing.yaml").read_text())
    doc["pools"]["load-sdrs"] = {"members": list(LOAD_REPS), "territories": [LOAD_TERRITORY]}
    return RouterConfig(rules=parse_rules(doc), directory=directory)


@dataclass
class Outputs:
    """Everything the router published on the routing and alert-request topics."""

    envelopes: dict[str, Envelope] = field(default_factory=dict)  # by id: redeliveries collapse

    async def follow(self, bootstrap: str, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            topics.ROUTING,
            topics.ALERT_REQUESTS,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    for record in records:
                        envelope = Envelope.from_bytes(record.value or b"")
                        self.envelopes[envelope.id] = envelope
        finally:
            await consumer.stop()

    def of(self, subject: str, type: EventType) -> list[Envelope]:
        return [e for e in self.envelopes.values() if e.subject == subject and e.type == type]

    async def wait(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.05)

    async def decision(self, subject: str, *, count: int = 1) -> list[RoutingDecided]:
        """Wait for `count` routing decisions of an account, then return them oldest first."""
        await self.wait(lambda: len(self.of(subject, EventType.ROUTING_DECIDED)) >= count)
        found = [e.payload(RoutingDecided) for e in self.of(subject, EventType.ROUTING_DECIDED)]
        return sorted(found, key=lambda r: r.decided_at)

    async def alerts(self, subject: str, kinds: set[AlertKind]) -> dict[AlertKind, AlertRequested]:
        """Wait until alerts of each kind in `kinds` arrived for an account; return them by kind."""

        def by_kind() -> dict[AlertKind, AlertRequested]:
            alerts = [
                e.payload(AlertRequested) for e in self.of(subject, EventType.ALERT_REQUESTED)
            ]
            return {a.kind: a for a in alerts}

        await self.wait(lambda: kinds <= set(by_kind()))
        return by_kind()


@dataclass
class Router:
    bootstrap: str
    config: RouterConfig
    replicas: list[Infra]
    handled: list[Counter[str]]  # per replica: event ids it decided
    outputs: Outputs
    ours: set[str]  # ids of the events this module sent: the only ones its routers handle
    schema: str  # the PostgreSQL schema of this module's routers

    @property
    def sessions(self) -> Any:
        return self.replicas[0].sessions

    async def send(self, topic: str, *envelopes: Envelope) -> None:
        self.ours.update(e.id for e in envelopes)
        await produce_envelopes(self.bootstrap, topic, list(envelopes))

    async def account(self, key: str, ready: Callable[[AccountState], bool]) -> AccountState:
        """Wait until the router's state of an account satisfies `ready`."""
        async with asyncio.timeout(20):
            while True:
                async with self.sessions() as session:
                    found = await repository.get_account(session, key)
                if found is not None and ready(found.state):
                    return found.state
                await asyncio.sleep(0.05)


def counting(handler: Any, counter: Counter[str], ours: set[str]) -> Any:
    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        # The topics also carry other test modules' events; routing them would use up the
        # example reps' capacity. (The embedded broker ignores offsets committed from outside
        # a group, so a fresh group cannot simply start at the end.)
        if envelope.id not in ours:
            return
        await handler(envelope, uow)
        counter[envelope.id] += 1

    return handle


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def router(infra: Any) -> AsyncIterator[Router]:
    """Two router replicas (own engines, producers, relays) in one fresh consumer group."""
    settings = infra.settings(outbox=OutboxSettings(poll_seconds=0.1))
    # A schema of its own: other modules' routers share the session database.
    schema = f"{SCHEMA}_it_{uuid.uuid4().hex[:8]}"
    await migrate(settings=settings.database, schema=schema, script_location=MIGRATIONS)
    config = router_config(settings.config_dir)
    group = f"router-it-{uuid.uuid4().hex[:8]}"
    replicas, handled, tasks = [], [], []
    ours: set[str] = set()
    for _ in range(2):
        replica = build_infra(settings, schema=schema)
        counter: Counter[str] = Counter()
        handler = counting(build_handler(config), counter, ours)
        replica.consumer(group=group, topics=TOPICS, handler=handler)
        await replica.producer.start()
        tasks += [asyncio.create_task(w.run()) for w in replica.workers]
        replicas.append(replica)
        handled.append(counter)
    await seed(replicas[0], settings)
    stop = asyncio.Event()
    outputs = Outputs()
    tasks.append(asyncio.create_task(outputs.follow(infra.bootstrap_servers, stop)))
    async with asyncio.timeout(30):
        while not all(w.assigned for r in replicas for w in r.workers if hasattr(w, "assigned")):
            await asyncio.sleep(0.05)
    yield Router(infra.bootstrap_servers, config, replicas, handled, outputs, ours, schema)
    stop.set()
    for replica in replicas:
        for worker in replica.workers:
            worker.stop()
    await asyncio.gather(*tasks)
    for replica in replicas:
        await replica.producer.stop()
        await replica.engine.dispose()


# ---- event builders -----------------------------------------------------------------------


def at(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


def tal(key: str, tier: Tier, **team: str) -> Envelope:
    payload = TalFinalized(
        account_key=key, name=f"Account {key}", tier=tier, finalized_at=at(60), **team
    )
    return Envelope.wrap(
        payload, type=EventType.TAL_FINALIZED, source="/test", subject=key, time=at(60)
    )


def engagement(
    key: str, kind: EngagementKind, *, email: str, when: datetime | None = None
) -> Envelope:
    when = when or at(1)
    payload = EngagementRecorded(
        engagement_id=f"eng-{uuid.uuid4().hex}",
        source="segment",
        kind=kind,
        account_key=key,
        contact_email=email,
        content_title="Pricing guide",
        occurred_at=when,
    )
    return Envelope.wrap(
        payload, type=EventType.ENGAGEMENT_RECORDED, source="/test", subject=key, time=when
    )


async def listed(router: Router, key: str, tier: Tier, **team: str) -> None:
    """Put an account on the TAL through the tal topic and wait until the router has it."""
    await router.send(topics.TAL, tal(key, tier, **team))
    await router.account(key, lambda s: s.in_tal and s.tier == tier)


# ---- tests ------------------------------------------------------------------------------------


async def test_seed_fills_the_router_and_never_overwrites(router: Router) -> None:
    async with router.sessions() as session:
        acme = await repository.get_account(session, "acme.com")
    assert acme is not None and acme.state.in_tal and acme.state.tier == Tier.T1
    changed = acme.state.model_copy(update={"tier": Tier.T3, "tal": Assignment()})
    async with router.sessions.begin() as session:
        assert await repository.seed_accounts(session, [changed]) == 0
    async with router.sessions() as session:
        again = await repository.get_account(session, "acme.com")
    assert again is not None and again.state.tier == Tier.T1


async def test_tier1_meeting_goes_to_the_ae_with_marketing_fyi(router: Router, unique: str) -> None:
    key = f"acme-{unique}.com"
    await listed(
        router, key, Tier.T1, ae_id="ava.ae", sdr_id="dan.sdr", marketer_id="mia.marketing"
    )
    await router.send(
        topics.ENGAGEMENT, engagement(key, EngagementKind.MEETING_REQUEST, email=f"jo@{key}")
    )
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.assignee_role, routing.tier) == ("ava.ae", "ae", Tier.T1)
    assert routing.signal == Signal.MEETING_REQUEST and routing.match.method == "domain"
    assert routing.rule_set_version == router.config.rules.version
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF, AlertKind.MARKETING_FYI})
    assert alerts[AlertKind.HANDOFF].recipient_ids == ["ava.ae"]
    assert alerts[AlertKind.HANDOFF].urgency == "urgent"
    assert alerts[AlertKind.MARKETING_FYI].recipient_ids == ["mia.marketing"]
    assert "Pricing guide" in alerts[AlertKind.HANDOFF].context.content_consumed


async def test_tier2_meeting_goes_to_the_sdr_with_an_ae_fyi(router: Router, unique: str) -> None:
    key = f"initech-{unique}.fr"
    await listed(router, key, Tier.T2, ae_id="chloe.ae", sdr_id="eve.sdr", territory="emea")
    await router.send(
        topics.ENGAGEMENT, engagement(key, EngagementKind.MEETING_REQUEST, email=f"li@{key}")
    )
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.tier) == ("eve.sdr", Tier.T2)
    assert "chloe.ae" in routing.notified_ids
    alerts = await router.outputs.alerts(
        key, {AlertKind.HANDOFF, AlertKind.HANDOFF_FYI, AlertKind.MARKETING_FYI}
    )
    assert alerts[AlertKind.HANDOFF_FYI].recipient_ids == ["chloe.ae"]
    assert alerts[AlertKind.MARKETING_FYI].channel_ids == ["abm-marketing"]  # no account marketer


async def test_tier3_meeting_is_round_robin_over_the_territory_pool(
    router: Router, unique: str
) -> None:
    key = f"hooli-{unique}.com"
    await listed(router, key, Tier.T3, territory="na-west")
    await router.send(
        topics.ENGAGEMENT, engagement(key, EngagementKind.MEETING_REQUEST, email=f"ed@{key}")
    )
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.tier) == ("finn.sdr", Tier.T3)
    assert any("round robin in pool na-west-sdrs" in line for line in routing.explanation)


async def test_engagement_spike_hands_off(router: Router, unique: str) -> None:
    key = f"spike-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    views = [
        engagement(key, EngagementKind.PAGE_VIEW, email=f"amy@{key}", when=at(10 - i))
        for i in range(5)
    ]
    await router.send(topics.ENGAGEMENT, *views)
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.ENGAGEMENT_SPIKE and routing.assignee_id == "ava.ae"
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF})
    assert len(alerts[AlertKind.HANDOFF].context.engagement_history) == 5


async def test_multiple_contacts_hand_off(router: Router, unique: str) -> None:
    key = f"multi-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    views = [
        engagement(key, EngagementKind.PAGE_VIEW, email=f"{who}@{key}", when=at(10 - i))
        for i, who in enumerate(("amy", "bob", "cy"))
    ]
    await router.send(topics.ENGAGEMENT, *views)
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.MULTIPLE_CONTACTS
    assert views[-1].id == router.outputs.of(key, EventType.ROUTING_DECIDED)[0].causationid


async def test_intent_surge_hands_off(router: Router, unique: str) -> None:
    key = f"surge-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    observed = IntentObserved(
        provider="bombora", account_key=key, topic="CRM Software", score=85, observed_at=at(1)
    )
    await router.send(
        topics.INTENT,
        Envelope.wrap(
            observed, type=EventType.INTENT_OBSERVED, source="/test", subject=key, time=at(1)
        ),
    )
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.INTENT_SURGE
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF})
    assert alerts[AlertKind.HANDOFF].context.intent_signals[0].topic == "CRM Software"


async def test_decision_trail_reassignment_and_sla_close(router: Router, unique: str) -> None:
    key = f"trail-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae", sdr_id="dan.sdr")
    await router.send(
        topics.ENGAGEMENT, engagement(key, EngagementKind.MEETING_REQUEST, email=f"jo@{key}")
    )
    [first] = await router.outputs.decision(key)
    app = create_app(runtime_getter=lambda: None, sessions=router.sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        trail = (await http.get(f"/v1/decisions/{first.decision_id}")).json()
        state = (await http.get(f"/v1/accounts/{key.upper()}/state")).json()
        missing = await http.get("/v1/decisions/nope")
    assert trail["explanation"] == first.explanation
    assert any(line.startswith("rule: tier 1") for line in trail["explanation"])
    assert state["state"]["handoffs"][0]["handoff_id"] == first.handoff_id
    assert missing.status_code == 404

    reassign = HandoffReassignRequested(
        handoff_id=first.handoff_id,
        account_key=key,
        previous_assignee_id="ava.ae",
        reason="on leave",
        requested_at=at(0.5),
    )
    await router.send(
        topics.HANDOFF_ACTIONS,
        Envelope.wrap(
            reassign,
            type=EventType.HANDOFF_REASSIGN_REQUESTED,
            source="/test",
            subject=key,
            time=at(0.5),
        ),
    )
    second = (await router.outputs.decision(key, count=2))[1]
    assert (second.handoff_id, second.assignee_id) == (first.handoff_id, "dan.sdr")

    met = SlaEvent(
        handoff_id=first.handoff_id, account_key=key, assignee_id="dan.sdr", tier=Tier.T1,
        signal=Signal.MEETING_REQUEST, started_at=at(0.5), deadline=at(-60), allowed_seconds=3600,
        policy_version="p1", within_sla=True, occurred_at=at(0),
    )  # fmt: skip
    await router.send(
        topics.SLA, Envelope.wrap(met, type=EventType.SLA_MET, source="/test", subject=key)
    )

    async def status() -> tuple[str, str]:
        async with router.sessions() as session:
            row = await session.execute(
                sa.select(handoffs.c.status, handoffs.c.assignee_id).where(
                    handoffs.c.handoff_id == first.handoff_id
                )
            )
            status, assignee = row.one()
            return status, assignee

    async with asyncio.timeout(20):
        while await status() != ("closed", "dan.sdr"):
            await asyncio.sleep(0.05)


async def test_what_if_replays_the_archive_under_a_candidate(
    router: Router, unique: str, infra: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"whatif-{unique}.com"
    await listed(router, key, Tier.T3, territory="na-west")
    meeting = engagement(key, EngagementKind.MEETING_REQUEST, email=f"jo@{key}")
    await router.send(topics.ENGAGEMENT, meeting)
    [routing] = await router.outputs.decision(key)
    assert routing.assignee_id == "finn.sdr"
    settings = infra.settings()
    doc = yaml.safe_load((settings.config_dir / "routing.yaml").read_text())
    doc["version"] = "2099-01-01.1"
    doc["pools"]["na-west-sdrs"]["members"] = ["dan.sdr"]  # Finn leaves the west pool
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(doc))
    since = (meeting.time - timedelta(seconds=1)).isoformat()
    argv = ["--rules", str(candidate), "--since", since, "--schema", router.schema]
    assert await asyncio.to_thread(commands.what_if_command, settings, argv) == 0
    report = capsys.readouterr().out
    assert f"{meeting.id}: finn.sdr -> dan.sdr" in report
    assert "what-if: 2026-11-23.1 -> 2099-01-01.1" in report


async def test_two_replicas_route_every_event_once_within_capacity(
    router: Router, unique: str
) -> None:
    keys = [f"load{i}-{unique}.com" for i in range(300)]
    accounts = [
        AccountState(account_key=k, tier=Tier.T3, in_tal=True, territory=LOAD_TERRITORY,
                     tal=Assignment(tier=Tier.T3, territory=LOAD_TERRITORY))
        for k in keys
    ]  # fmt: skip
    async with router.sessions.begin() as session:
        assert await repository.seed_accounts(session, accounts) == len(keys)
    meetings = [engagement(k, EngagementKind.MEETING_REQUEST, email=f"jo@{k}") for k in keys]
    sent = {m.id for m in meetings}
    await router.send(topics.ENGAGEMENT, *meetings)

    def outcomes() -> list[Envelope]:
        return [
            e
            for e in router.outputs.envelopes.values()
            if e.causationid in sent and e.type != EventType.ALERT_REQUESTED
        ]

    await router.outputs.wait(lambda: len(outcomes()) >= len(sent), timeout=45)
    await asyncio.sleep(0.5)  # room for a double decision to show up
    per_event = Counter(e.causationid for e in outcomes())
    assert set(per_event) == sent and set(per_event.values()) == {1}
    decided = [e.payload(RoutingDecided) for e in outcomes() if e.type == EventType.ROUTING_DECIDED]
    per_rep = Counter(r.assignee_id for r in decided)
    # 300 meetings against fewer seats: the load pool fills exactly, then the default pool
    # takes the overflow up to each rep's capacity, and the rest is escalated
    assert {rep: per_rep[rep] for rep in LOAD_REPS} == {
        rep: capacity for rep, (capacity, _) in LOAD_REPS.items()
    }
    unassigned = [
        e.payload(RoutingConflict) for e in outcomes() if e.type == EventType.ROUTING_CONFLICT
    ]
    assert unassigned and len(unassigned) == len(keys) - sum(per_rep.values())
    assert all(c.reason.startswith("no one can take the handoff") for c in unassigned)
    # both replicas took part, and no event was decided twice between them
    by_replica = [sum(1 for event_id in c if event_id in sent) for c in router.handled]
    assert all(n > 0 for n in by_replica) and sum(by_replica) == len(sent)
    async with router.sessions() as session:
        open_per_rep = await repository.open_handoff_counts(session)
        archived = await session.scalar(
            sa.select(sa.func.count())
            .select_from(routed_events)
            .where(routed_events.c.event_id.in_(sent))
        )
    capacity = {p.id: p.capacity for p in router.config.directory.people}
    assert all(open_per_rep[rep] == capacity[rep] for rep in per_rep)  # full, never over
    assert archived == len(sent)
