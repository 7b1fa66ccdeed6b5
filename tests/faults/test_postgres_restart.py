"""Scenario 2: PostgreSQL stops and starts again on the same data dir (same socket, same URL) under
load. The services recover by themselves (none exits, nobody restarts them) and nothing that was
acknowledged is lost: a vendor whose webhook got a 5xx meanwhile retries it, as vendors do."""

from __future__ import annotations

import asyncio

import pytest
from fault_stack import FaultStack, long_mode
from ledger import Signature
from scenario import Injected, all_ready, judge, now, under_load

pytestmark = pytest.mark.integration

# fast: clients are disconnected and the server shuts down cleanly; immediate: a crash, WAL
# recovery on start.
MODES = ("fast", "immediate", "fast", "immediate") if long_mode() else ("immediate",)
DOWN_SECONDS = 8.0 if long_mode() else 3.0


async def test_postgres_restart_under_load_loses_nothing(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    if not stack.database.restartable:
        pytest.skip("DATABASE_URL points at an external PostgreSQL: the harness cannot restart it")
    pids = {name: [p.process.pid for p in stack.live(name)] for name in stack.replicas}

    async def inject() -> Injected:
        for mode in MODES:
            await asyncio.to_thread(stack.database.stop, mode)
            await asyncio.sleep(DOWN_SECONDS)
            await asyncio.to_thread(stack.database.start)
            await asyncio.sleep(2.0)
        down = f"{len(MODES)}x ({'/'.join(MODES)}), {DOWN_SECONDS:.0f} s down each"
        return Injected(f"PostgreSQL stop {down}", now(), [])

    hooks, injected = await under_load(stack, inject)
    verdict = await judge(stack, "2 postgres restart", hooks, injected, expected, timeout=180)
    # By themselves: the very processes that ran before are the ones running now.
    assert {n: [p.process.pid for p in stack.live(n)] for n in stack.replicas} == pids
    assert verdict.accepted == len(hooks)
    await all_ready(stack)
