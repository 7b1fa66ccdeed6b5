"""SLA probes: handoffs whose SLA falls due while a scenario hurts the SLA monitor, and what the
SLA topic shows of them: each warning and breach once, and how late after its due time.

A probe is a routing decision put on the routing topic with `decided_at` in the past, so that its
one-minute SLA (intent surges at tier 1: `fault_config.PROBE_MINUTES`; no webhook of the workload
makes one) warns and breaches seconds from now. Its account is no Faultco account: the ledger and
the outside counts never see it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fault_config import PROBE_MINUTES, team_member
from test_sla_support import Collector

from kafka_tools import produce_envelopes
from tandem_shared import topics
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import EventType, MatchInfo, RoutingDecided, Signal, Tier

# What "on time" means: the SLA monitor fires a warning or breach within this many seconds of its
# due time (or of its clock's start, for one due before the clock existed). The timer ticks every
# 0.5 s; the rest is a replica killed holding a due clock, a rebalance, a busy CI box.
ON_TIME_SECONDS = 3.0
ALLOWED = timedelta(minutes=PROBE_MINUTES)
FIRINGS = (EventType.SLA_WARNING, EventType.SLA_BREACHED)


@dataclass
class Lateness:
    """Per probe and firing kind: records on the topic, firings among them, seconds late."""

    records: dict[tuple[str, str], int]
    distinct: dict[tuple[str, str], int]
    late: dict[tuple[str, str], float]

    def summary(self) -> str:
        worst = max(self.late.values(), default=0.0)
        return f"{len(self.distinct)} SLA firings, latest {worst:.1f} s after due"


class SlaProbes:
    """Plants probes and collects the SLA topic from now on."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._token = uuid.uuid4().hex[:8]
        self._events = Collector(bootstrap, [topics.SLA])
        self.handoffs: list[str] = []

    async def start(self) -> None:
        await self._events.start()

    async def stop(self) -> None:
        await self._events.stop()

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
        """Wait until every probe breached (and what else is on the topic was read); measure."""
        async with asyncio.timeout(timeout):
            while not all(self._events.of(h, EventType.SLA_BREACHED) for h in self.handoffs):
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # a late second firing would show
        await self._events.caught_up()
        records: dict[tuple[str, str], int] = {}
        distinct: dict[tuple[str, str], int] = {}
        late: dict[tuple[str, str], float] = {}
        for handoff in self.handoffs:
            # An event's time is when the SLA monitor made it; `occurred_at`, when it was due.
            [started, *_] = self._events.of(handoff, EventType.SLA_STARTED)
            for kind in FIRINGS:
                fired = self._events.of(handoff, kind)
                records[(handoff, kind)] = len(fired)
                # A relay's replay repeats the envelope; a second firing makes another (its time).
                distinct[(handoff, kind)] = len({(e.id, e.time) for e in fired})
                if fired:
                    due = datetime.fromisoformat(fired[0].data["occurred_at"])
                    at = min(e.time for e in fired)
                    late[(handoff, kind)] = (at - max(due, started.time)).total_seconds()
        return Lateness(records, distinct, late)
