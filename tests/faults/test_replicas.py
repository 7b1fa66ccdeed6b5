"""Scenario 7: a second replica of router, sla-monitor and alerts joins under load, the groups
rebalance, and one replica of each leaves again (SIGTERM: a rolling update; SIGKILL in long mode's
odd rounds: a lost node). Nothing lost, nothing twice, while partitions and the alerts' delivery
work (leased rows) move between replicas; SLA deadlines falling due meanwhile (sla_probes.py) warn
and breach once each, within `ON_TIME_SECONDS` of their due time."""

from __future__ import annotations

import asyncio
import signal

import pytest
from fault_config import TEAM
from fault_stack import FaultStack, long_mode
from ledger import Signature
from scenario import Injected, all_ready, judge, now, under_load
from sla_probes import FIRINGS, ON_TIME_SECONDS, SlaProbes

pytestmark = pytest.mark.integration

REPLICATED = ("router", "sla-monitor", "alerts")
ROUNDS = 3 if long_mode() else 1
SHARED_SECONDS = 6.0  # both replicas at work, after the join's rebalance
# Seconds after a round starts at which probes breach (each warns 3 s before): while the replica
# joins, while both run, as the older one leaves and after.
PROBES_DUE = [4.0, 7.0, 10.0, 13.0] if long_mode() else [4.0, 8.0, 12.0]


async def test_replicas_join_and_leave_under_load(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    probes = SlaProbes(stack.bootstrap)
    await probes.start()

    async def inject() -> Injected:
        restarts: list[float] = []
        leaves = []
        for round_ in range(ROUNDS):
            await probes.plant(PROBES_DUE)
            restarts += await asyncio.gather(*(stack.start(name) for name in REPLICATED))
            assert all(len(stack.live(name)) == 2 for name in REPLICATED)
            await asyncio.sleep(SHARED_SECONDS)
            sig = signal.SIGKILL if round_ % 2 else signal.SIGTERM
            leaves.append(sig.name)
            # The older replica leaves: its partitions and leases move to the newcomer.
            await asyncio.gather(*(stack.kill(name, sig=sig) for name in REPLICATED))
        description = f"{ROUNDS} round(s): +1 replica of {'/'.join(REPLICATED)}, then -1 by "
        return Injected(description + "/".join(leaves), now(), restarts)

    try:
        hooks, injected = await under_load(stack, inject, tail=3.0)
        lateness = await probes.settle()
    finally:
        await probes.stop()
    print(f"\nSLA probes under replica churn: {lateness.summary()}", flush=True)
    # Each deadline fired once (a relay's replay of it is the inboxes' to absorb), never early,
    # and within the bound.
    assert set(lateness.distinct.values()) == {1}, lateness.distinct
    assert len(lateness.distinct) == len(FIRINGS) * len(probes.handoffs)
    assert all(-1.0 <= late <= ON_TIME_SECONDS for late in lateness.late.values()), lateness.late
    # An alerts replica killed mid-send leaves the email it was handing to each mailbox to go
    # out again (the next sender finds a Slack message in its conversation: alerts/delivery.py).
    kills = sum(1 for r in range(ROUNDS) if r % 2)
    window = TEAM * kills
    await judge(stack, "7 replicas join/leave", hooks, injected, expected, email_window=window)
    assert all(len(stack.live(name)) == 1 for name in REPLICATED)
    await all_ready(stack)
