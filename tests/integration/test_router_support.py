"""Helpers the router's integration tests share (no tests here).

A router running as replicas of one consumer group over a schema of its own, a collector of what it
publishes on the routing and alert-request topics, and builders of the events it consumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from in_process import running

from kafka_tools import produce_envelopes
from tandem_router.adapters import repository
from tandem_router.config import SCHEMA, RouterConfig, load_people
from tandem_router.domain.model import AccountState
from tandem_router.domain.rules import parse_rules
from tandem_router.main import MIGRATIONS, RouterService, build_service
from tandem_shared import topics
from tandem_shared.consumer import Handler
from tandem_shared.db import migrate
from tandem_shared.directory import Person, Role
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AlertKind,
    AlertRequested,
    EngagementKind,
    EngagementRecorded,
    EventType,
    RoutingDecided,
    TalFinalized,
    Tier,
)
from tandem_shared.settings import OutboxSettings, Settings
from tandem_shared.uow import UnitOfWork


def router_config(
    config_dir: Path, *, reps: Mapping[str, tuple[int, int]], pool: str, territory: str
) -> RouterConfig:
    """The example configuration plus SDRs (id -> capacity, weight) in a pool of their own."""
    directory = load_people(config_dir)
    extra = tuple(
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
        for rep, (capacity, weight) in reps.items()
    )
    directory = directory.model_copy(update={"people": (*directory.people, *extra)})
    doc = yaml.safe_load((config_dir / "routing.yaml").read_text())
    doc["pools"][pool] = {"members": list(reps), "territories": [territory]}
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
    replicas: list[RouterService]
    handled: list[Counter[str]]  # per replica: event ids it decided
    outputs: Outputs
    ours: set[str]  # ids of the events the test sent: the only ones its routers handle
    schema: str  # the PostgreSQL schema of these routers

    @property
    def sessions(self) -> Any:
        return self.replicas[0].infra.sessions

    @property
    def app(self) -> FastAPI:
        """The HTTP app of the first replica."""
        return self.replicas[0].app

    async def send(self, topic: str, *envelopes: Envelope) -> None:
        self.ours.update(e.id for e in envelopes)
        await produce_envelopes(self.bootstrap, topic, list(envelopes))

    async def meeting(self, key: str, *, contact: str = "jo") -> None:
        """Send a meeting request from `contact`@`key` about the account."""
        meeting = engagement(key, EngagementKind.MEETING_REQUEST, email=f"{contact}@{key}")
        await self.send(topics.ENGAGEMENT, meeting)

    async def account(self, key: str, ready: Callable[[AccountState], bool]) -> AccountState:
        """Wait until the router's state of an account satisfies `ready`."""
        async with asyncio.timeout(20):
            while True:
                async with self.sessions() as session:
                    found = await repository.get_account(session, key)
                if found is not None and ready(found.state):
                    return found.state
                await asyncio.sleep(0.05)


def counting(handler: Handler, counter: Counter[str], ours: set[str]) -> Handler:
    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        # The topics also carry other test modules' events; routing them would use up the
        # example reps' capacity. (The embedded broker ignores offsets committed from outside
        # a group, so a fresh group cannot simply start at the end.)
        if envelope.id not in ours:
            return
        await handler(envelope, uow)
        counter[envelope.id] += 1

    return handle


async def new_schema(settings: Settings) -> str:
    """Migrate a router schema of its own: other modules' routers share the session database."""
    schema = f"{SCHEMA}_it_{uuid.uuid4().hex[:8]}"
    await migrate(settings=settings.database, schema=schema, script_location=MIGRATIONS)
    return schema


@contextlib.asynccontextmanager
async def running_router(
    infra: Any,
    config: RouterConfig,
    *,
    schema: str,
    group: str,
    replicas: int = 2,
    ours: set[str] | None = None,
) -> AsyncIterator[Router]:
    """Run router replicas (own engines, producers, relays) in one consumer group, then stop."""
    settings = infra.settings(outbox=OutboxSettings(poll_seconds=0.1))
    ours = set() if ours is None else ours

    def replica(counter: Counter[str]) -> RouterService:
        return build_service(
            settings,
            config=config,
            schema=schema,
            group=group,
            wrap_handler=lambda handler: counting(handler, counter, ours),
        )

    handled: list[Counter[str]] = [Counter() for _ in range(replicas)]
    built = [replica(counter) for counter in handled]
    stop = asyncio.Event()
    outputs = Outputs()
    # Each replica seeds, at start, the accounts it does not know yet.
    async with running(*(r.infra for r in built)):
        follower = asyncio.create_task(outputs.follow(infra.bootstrap_servers, stop))
        try:
            async with asyncio.timeout(30):
                while not all(
                    w.assigned for r in built for w in r.infra.workers if hasattr(w, "assigned")
                ):
                    await asyncio.sleep(0.05)
            yield Router(infra.bootstrap_servers, config, built, handled, outputs, ours, schema)
        finally:
            stop.set()
            await follower


# ---- event builders -----------------------------------------------------------------------


def at(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


def tal(key: str, tier: Tier, *, name: str | None = None, **team: str) -> Envelope:
    payload = TalFinalized(
        account_key=key, name=name or f"Account {key}", tier=tier, finalized_at=at(60), **team
    )
    return Envelope.wrap(
        payload, type=EventType.TAL_FINALIZED, source="/test", subject=key, time=at(60)
    )


def engagement(
    key: str,
    kind: EngagementKind,
    *,
    email: str,
    when: datetime | None = None,
    keyed: bool = True,  # False: the event names no account, only the contact's email
) -> Envelope:
    when = when or at(1)
    payload = EngagementRecorded(
        engagement_id=f"eng-{uuid.uuid4().hex}",
        source="segment",
        kind=kind,
        account_key=key if keyed else None,
        contact_email=email,
        content_title="Pricing guide",
        occurred_at=when,
    )
    return Envelope.wrap(
        payload, type=EventType.ENGAGEMENT_RECORDED, source="/test", subject=key, time=when
    )


async def listed(
    router: Router, key: str, tier: Tier, *, name: str | None = None, **team: str
) -> None:
    """Put an account on the TAL through the tal topic and wait until the router has it."""
    await router.send(topics.TAL, tal(key, tier, name=name, **team))
    await router.account(key, lambda s: s.in_tal and s.tier == tier)
