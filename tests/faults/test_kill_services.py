"""Scenario 1: SIGKILL each service at random moments under load, several times, and restart it.
Every acknowledged webhook yields exactly one decision, one clock and one message per recipient
and channel, and the gateway's read models equal the undisturbed run's."""

from __future__ import annotations

import asyncio
import random

import pytest
from fault_stack import SERVICES, FaultStack, long_mode
from ledger import Signature
from scenario import Injected, judge, now, under_load

pytestmark = pytest.mark.integration

# Long: each service on its own, three kills each. Short (CI): every service killed once, one
# after the other, in a single load window: the same faults for a fifth of the settling time.
KILLS = 3 if long_mode() else 1
VICTIMS = [(name,) for name in SERVICES] if long_mode() else [SERVICES]


@pytest.mark.parametrize("victims", VICTIMS, ids="+".join)
async def test_sigkill_under_load_loses_and_repeats_nothing(
    stack: FaultStack, expected: dict[str, Signature], victims: tuple[str, ...]
) -> None:
    rng = random.Random()

    async def inject() -> Injected:
        restarts = []
        for service in victims:
            for _ in range(KILLS):
                # A random moment: mid-request, mid-batch, mid-relay, wherever the load is.
                await asyncio.sleep(rng.uniform(0.2, 2.5))
                await stack.kill(service)
                await asyncio.sleep(rng.uniform(0.0, 1.0))  # dead a while, as under Kubernetes
                restarts.append(await stack.start(service))
        return Injected(f"SIGKILL {'+'.join(victims)} x{KILLS} each", now(), restarts)

    hooks, injected = await under_load(stack, inject)
    name = "all" if len(victims) > 1 else victims[0]
    await judge(stack, f"1 kill {name}", hooks, injected, expected, timeout=180)
