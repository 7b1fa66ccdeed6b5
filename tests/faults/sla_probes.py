"""SLA probes: handoffs whose SLA falls due while a scenario hurts the SLA monitor, and what the
SLA topic shows of them: each warning and breach once, and how late after its due time.

A probe is a routing decision put on the routing topic with `decided_at` in the past, so that its
one-minute SLA (intent surges at tier 1: `fault_config.PROBE_MINUTES`; no webhook of the workload
makes one) warns and breaches seconds from now. Its account is no Faultco account: the ledger and
the outside counts never see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from fault_config import PROBE_MINUTES, team_member

from kafka_tools import produce_envelopes
from tandem_shared import topics
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import EventType, MatchInfo, RoutingDecided, Signal, Tier

# What "on time" means: a warning or breach is on the SLA topic within this many seconds of its
# due time (or of its clock's start, for one due before the clock existed). The timer ticks every
# 0.5 s; the rest is a rebalance moving the routing partition, a replica's relay, a busy CI box.
ON_TIME_SECONDS = 3.0
ALLOWED = timedelta(minutes=PROBE_MINUTES)
FIRINGS = (EventType.SLA_WARNING, EventType.SLA_BREACHED)


@dataclass
class Lateness:
    """Per probe and firing kind: how many records, how many distinct events, seconds late."""

    records: dict[tuple[str, str], int]
    distinct: dict[tuple[str, str], int]
    late: dict[tuple[str, str], float]

    def summary(self) -> str:
        worst = max(self.late.values(), default=0.0)
        return f"{len(self.distinct)} SLA firings, latest {worst:.1f} s after due"


class SlaProbes:
    """Plants probes and watches the SLA topic from now on."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._token = uuid.uuid4().hex[:8]
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.handoffs: list[str] = []
        # handoff -> [(arrived, type, event id, due)]
        self._seen: dict[str, list[tuple[float, str, str, datetime]]] = defaultdict(list)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        parts = [TopicPartition(topics.SLA, p) for p in consumer.partitions_for_topic(topics.SLA)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)  # fixed now: what comes later is read
        self._consumer = consumer
        self._task = asyncio.create_task(self._watch(consumer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _watch(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                arrived = time.time()
                for record in records:
                    envelope = Envelope.from_bytes(record.value or b"")
                    handoff = envelope.data.get("handoff_id", "")
                    if handoff.startswith(f"probe-{self._token}"):
                        due = datetime.fromisoformat(envelope.data["occurred_at"])
                        self._seen[handoff].append((arrived, envelope.type, envelope.id, due))

    async def plant(self, due_in: list[float]) -> None:
        """One probe per entry, breaching that many seconds from now (warning before it)."""
        now = utcnow()
        decisions = []
        for seconds in due_in:
            handoff = f"probe-{self._token}-{len(self.handoffs)}"
            self.handoffs.append(handoff)
            key = f"{handoff}.probe.example"
            payload = RoutingDecided(
                decision_id=f"{handoff}:decision",
                handoff_id=handoff,
                account_key=key,
                account_name=key,
                tier=Tier.T1,
                in_tal=True,
                signal=Signal.INTENT_SURGE,
                assignee_id=team_member("ae", len(self.handoffs))["id"],
                assignee_role="ae",
                match=MatchInfo(method="domain"),
                rule_set_version="faults",
                decided_at=now - ALLOWED + timedelta(seconds=seconds),
            )
            wrapped = Envelope.wrap(
                payload, type=EventType.ROUTING_DECIDED, source="/faults", subject=key
            )
            decisions.append(wrapped)
        await produce_envelopes(self._bootstrap, topics.ROUTING, decisions)

    async def settle(self, timeout: float = 90.0) -> Lateness:
        """Wait until every probe breached (and a little for late duplicates); measure."""
        async with asyncio.timeout(timeout):
            while not all(self._fired(h, EventType.SLA_BREACHED) for h in self.handoffs):
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        records: dict[tuple[str, str], int] = {}
        distinct: dict[tuple[str, str], int] = {}
        late: dict[tuple[str, str], float] = {}
        for handoff in self.handoffs:
            seen = self._seen[handoff]
            started = min(at for at, kind, _, _ in seen if kind == EventType.SLA_STARTED)
            for kind in FIRINGS:
                fired = [(at, event_id, due) for at, k, event_id, due in seen if k == kind]
                records[(handoff, kind)] = len(fired)
                distinct[(handoff, kind)] = len({event_id for _, event_id, _ in fired})
                if fired:
                    at, _, due = min(fired)
                    late[(handoff, kind)] = at - max(due.timestamp(), started)
        return Lateness(records, distinct, late)

    def _fired(self, handoff: str, kind: str) -> bool:
        return any(k == kind for _, k, _, _ in self._seen[handoff])
