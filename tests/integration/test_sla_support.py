"""Helpers the SLA monitor's integration tests share (no tests here).

A test configuration whose rep works around the clock, an event collector that sees what the
service publishes from the moment it starts, builders of the events the service consumes, and
the service itself running in the test's loop with a clock the tests move forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from conftest import Infra
from in_process import running
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from kafka_tools import produce_envelopes, start_group_at_end
from tandem_shared import topics
from tandem_shared.db import migrate
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    CrmSystem,
    EventType,
    MatchInfo,
    RoutingDecided,
    Signal,
    Tier,
)
from tandem_shared.settings import OutboxSettings
from tandem_sla_monitor.main import CONSUMED_TOPICS, MIGRATIONS, SCHEMA, SlaService, build_service
from tandem_sla_monitor.settings import SlaMonitorSettings, SlaSettings

REP = "rita.rep"
REP_CRM_ID = "hs-owner-rita"
MANAGER = "mo.manager"
LEADER = "lee.leader"
COVER = "cora.cover"  # the rep's cover (people.yaml cover_id)
COVER_CRM_ID = "hs-owner-cora"


def quiet_country(today: date) -> str:
    """Return a country with no public holiday around `today`, so business time is wall time."""
    days = [today + timedelta(days=n) for n in range(-1, 4)]
    for country in ("IS", "SE", "NL", "US", "GB", "FR", "DE", "JP", "CA", "AU"):
        calendar = holidays.country_holidays(country, years={d.year for d in days})
        if not any(d in calendar for d in days):
            return country
    raise AssertionError(f"no listed country is free of holidays around {today}")


def write_config(
    directory: Path,
    *,
    warning_share: float = 0.75,
    escalation: str,
    minutes: int = 1,
    touched_by: str = "{}",
) -> Path:
    """Write people.yaml and sla.yaml (a new policy version): meeting requests get `minutes`."""
    country = quiet_country(datetime.now(UTC).date())
    always = 'working_hours: {days: [1, 2, 3, 4, 5, 6, 7], start: "00:00", end: "23:59:59.999999"}'
    people = "\n".join(
        f"""  - id: {pid}
    name: {pid}
    email: {pid}@tandem.example
    role: {role}
    team: sales
    timezone: UTC
    country: {country}
    {always}
    {extra}"""
        for pid, role, extra in (
            (
                REP,
                "ae",
                f"crm_user_ids: [{REP_CRM_ID}]\n    manager_id: {MANAGER}\n    cover_id: {COVER}",
            ),
            (COVER, "ae", f"crm_user_ids: [{COVER_CRM_ID}]\n    manager_id: {MANAGER}"),
            (MANAGER, "manager", f"manager_id: {LEADER}"),
            (LEADER, "leader", ""),
        )
    )
    (directory / "people.yaml").write_text(f"people:\n{people}\n", encoding="utf-8")
    (directory / "sla.yaml").write_text(
        f"""version: test-{uuid.uuid4().hex[:6]}
warning_share: {warning_share}
targets:
  meeting_request: {{1: {minutes}, 2: {minutes}, 3: {minutes}}}
escalation:
{escalation}
acknowledgement_pause_minutes: 10
touched_by: {touched_by}
""",
        encoding="utf-8",
    )
    return directory


def decision(
    handoff_id: str,
    *,
    decided_at: datetime,
    account_key: str,
    assignee_id: str = REP,
    tier: Tier = Tier.T1,
) -> Envelope:
    """A routing decision of a meeting request (Tier 1 unless said)."""
    payload = RoutingDecided(
        decision_id=f"{handoff_id}:{assignee_id}",
        handoff_id=handoff_id,
        account_key=account_key,
        account_name=account_key,
        tier=tier,
        in_tal=True,
        signal=Signal.MEETING_REQUEST,
        assignee_id=assignee_id,
        assignee_role="ae",
        match=MatchInfo(method="domain"),
        rule_set_version="test",
        decided_at=decided_at,
    )
    return Envelope.wrap(
        payload, type=EventType.ROUTING_DECIDED, source="/test", subject=account_key
    )


def activity(*, account_key: str, occurred_at: datetime, actor_id: str = REP_CRM_ID) -> Envelope:
    """A call logged in the CRM on an account."""
    payload = ActivityLogged(
        crm=CrmSystem.HUBSPOT,
        activity_id=uuid.uuid4().hex,
        kind=ActivityKind.CALL,
        account_key=account_key,
        actor_id=actor_id,
        occurred_at=occurred_at,
    )
    return Envelope.wrap(
        payload, type=EventType.ACTIVITY_LOGGED, source="/test", subject=account_key
    )


class MovableNow:
    """Wall-clock time plus an offset the tests move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> datetime:
        self.offset += timedelta(**delta)
        return self()


@dataclass
class Running:
    """The SLA monitor running in the test's loop, what it published, and its HTTP API."""

    service: SlaService
    now: MovableNow
    events: Collector
    http: httpx.AsyncClient
    bootstrap: str

    async def produce(self, topic: str, *envelopes: Envelope) -> None:
        await produce_envelopes(self.bootstrap, topic, list(envelopes))

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until the relay published every outbox row and the collector read them all."""
        await published_everything(self.service.infra.engine, self.events, timeout=timeout)


async def published_everything(
    engine: AsyncEngine, collector: Collector, *, timeout: float = 10.0
) -> None:
    """Wait until the monitor's relay published every outbox row and the collector read it."""
    pending = sa.text(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE published_at IS NULL")
    async with asyncio.timeout(timeout):
        while True:
            async with engine.connect() as conn:
                if not await conn.scalar(pending):
                    break
            await asyncio.sleep(0.05)
    await collector.caught_up(timeout)


@contextlib.asynccontextmanager
async def running_sla(infra: Infra, config_dir: Path) -> AsyncIterator[Running]:
    """Run the service's consumer, relay and timer in this loop until the block ends."""
    group = f"sla-test-{uuid.uuid4().hex[:8]}"
    settings = SlaMonitorSettings(
        **infra.settings(config_dir=config_dir).model_dump(exclude={"outbox"}),
        outbox=OutboxSettings(poll_seconds=0.2),
        sla=SlaSettings(tick_seconds=0.1, consumer_group=group),
    )
    await migrate(settings=settings.database, schema=SCHEMA, script_location=MIGRATIONS)
    await start_group_at_end(infra.bootstrap_servers, group, list(CONSUMED_TOPICS))
    now = MovableNow()
    service = build_service(settings, now=now)
    events = Collector(
        infra.bootstrap_servers, [topics.SLA, topics.ALERT_REQUESTS, topics.HANDOFF_ACTIONS]
    )
    await events.start()
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with (
            running(service.infra),
            httpx.AsyncClient(transport=transport, base_url="http://sla") as http,
        ):
            yield Running(service, now, events, http, infra.bootstrap_servers)
    finally:
        await events.stop()


def recorded_spans() -> InMemorySpanExporter:
    """Record the spans of this process in memory (an SDK tracer provider, as services run)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)  # once per process: later calls would be ignored
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


class Collector:
    """Collects the envelopes published on some topics after it started, with arrival times."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self.received: list[tuple[str, Envelope]] = []
        self.headers: dict[str, dict[str, str]] = {}  # by envelope id
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._read_up_to: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before anything is produced
            self._read_up_to[tp] = await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._collect(consumer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _collect(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for tp, records in batch.items():
                for record in records:
                    envelope = Envelope.from_bytes(record.value or b"")
                    self.received.append((record.topic, envelope))
                    self.headers[envelope.id] = {k: v.decode() for k, v in record.headers}
                self._read_up_to[tp] = records[-1].offset + 1

    async def caught_up(self, timeout: float = 10.0) -> None:
        """Wait until everything on the topics now has been read (so "exactly N" can fail)."""
        assert self._consumer is not None
        partitions = self._consumer.assignment()
        ends = await self._consumer.end_offsets(list(partitions))
        async with asyncio.timeout(timeout):
            while any(self._read_up_to[tp] < end for tp, end in ends.items()):
                await asyncio.sleep(0.05)

    def of(self, handoff_id: str, type_: EventType | None = None) -> list[Envelope]:
        """Return what was received about one handoff (of one type)."""
        return [
            e
            for _, e in self.received
            if e.data.get("handoff_id") == handoff_id and (type_ is None or e.type == type_)
        ]

    async def wait_for(
        self,
        handoff_id: str,
        type_: EventType,
        *,
        count: int = 1,
        where: Callable[[Envelope], bool] = lambda _: True,
        timeout: float = 10.0,
    ) -> list[Envelope]:
        """Wait until `count` matching envelopes arrived; return them."""
        async with asyncio.timeout(timeout):
            while len(found := [e for e in self.of(handoff_id, type_) if where(e)]) < count:
                await asyncio.sleep(0.05)
        return found
