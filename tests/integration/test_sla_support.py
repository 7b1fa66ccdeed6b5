"""Helpers the SLA monitor's integration tests share (no tests here).

A test configuration whose rep works around the clock, an event collector that sees what the
service publishes from the moment it starts, and builders of the events the service consumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
from aiokafka import AIOKafkaConsumer, TopicPartition

from tandem_shared.envelope import Envelope
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

REP = "rita.rep"
REP_CRM_ID = "hs-owner-rita"
MANAGER = "mo.manager"
LEADER = "lee.leader"


def quiet_country(today: date) -> str:
    """Return a country with no public holiday around `today`, so business time is wall time."""
    days = [today + timedelta(days=n) for n in range(-1, 4)]
    for country in ("IS", "SE", "NL", "US", "GB", "FR", "DE", "JP", "CA", "AU"):
        calendar = holidays.country_holidays(country, years={d.year for d in days})
        if not any(d in calendar for d in days):
            return country
    raise AssertionError(f"no listed country is free of holidays around {today}")


def write_config(
    directory: Path, *, warning_share: float = 0.75, escalation: str, minutes: int = 1
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
            (REP, "ae", f"crm_user_ids: [{REP_CRM_ID}]\n    manager_id: {MANAGER}"),
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
""",
        encoding="utf-8",
    )
    return directory


def decision(
    handoff_id: str, *, decided_at: datetime, account_key: str, assignee_id: str = REP
) -> Envelope:
    """A routing decision of a Tier 1 meeting request."""
    payload = RoutingDecided(
        decision_id=f"{handoff_id}:{assignee_id}",
        handoff_id=handoff_id,
        account_key=account_key,
        account_name=account_key,
        tier=Tier.T1,
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


class Collector:
    """Collects the envelopes published on some topics after it started, with arrival times."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self.received: list[tuple[str, Envelope]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

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
            await consumer.position(tp)
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
            for records in batch.values():
                self.received.extend(
                    (r.topic, Envelope.from_bytes(r.value or b"")) for r in records
                )

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
