"""A scenario's frame: steady load of mixed webhooks, a fault injected meanwhile, then the wait
until every acknowledged webhook's outcome equals the undisturbed run's, and the verdict."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import cycle

import httpx
from fault_report import record
from fault_stack import SERVICES, SLACK_TIMEOUT, FaultStack, long_mode
from ledger import Signature, Verdict, settle
from workload import BUILDERS, KINDS, Driver, Webhook, meeting

# Webhooks per second: steady, well below what the stack takes (no backlog of its own).
RATE = 4.0 if long_mode() else 2.0
QUIET = 5.0 if long_mode() else 2.0  # seconds watched after settling, for late duplicates


@dataclass
class Injected:
    """What a fault injector did, and when the system was whole again (monotonic)."""

    description: str
    ended_at: float
    restarts: list[float]  # seconds each restarted process took to answer /healthz


def maker(stack: FaultStack, kinds: tuple[str, ...] = KINDS) -> Callable[[], Webhook]:
    turns = cycle(kinds)
    return lambda: BUILDERS[next(turns)](stack.pool.take(1)[0])


async def under_load(
    stack: FaultStack,
    inject: Callable[[], Awaitable[Injected]],
    *,
    lead_in: float = 1.5,
    tail: float = 1.5,
    rate: float = RATE,
) -> tuple[list[Webhook], Injected]:
    """Post webhooks from `lead_in` seconds before the fault until `tail` seconds after it."""
    hooks: list[Webhook] = []
    stop = asyncio.Event()
    driver = Driver(lambda: stack.url("ingest"))
    load = asyncio.create_task(driver.steady(maker(stack), rate, stop, hooks))
    try:
        await asyncio.sleep(lead_in)
        injected = await inject()
        await asyncio.sleep(tail)
    finally:
        stop.set()
        await load
        await driver.close()
    return hooks, injected


async def judge(
    stack: FaultStack,
    name: str,
    hooks: list[Webhook],
    injected: Injected,
    expected: dict[str, Signature],
    *,
    timeout: float = 120,
    email_window: int = 0,
    given_up_ok: bool = False,
) -> Verdict:
    """Settle, print and record the scenario; assert the promise: nothing lost, nothing twice.

    `email_window`: emails that may go out twice because a sender died between handing one to
    the mail server and recording it (SMTP has nothing to look up; the resend keeps its
    Message-ID). A Slack message never may: the next sender looks for it first.
    `given_up_ok`: a delivery alerts gave up on openly (a permanent failure) counts as lost
    only if it is not shown as failed: each is one missing message and one gateway delivery
    `failed` instead of `delivered`.
    """
    verdict = await settle(
        stack,
        hooks,
        expected,
        since=injected.ended_at,
        timeout=timeout,
        quiet=QUIET,
        given_up_ok=given_up_ok,
    )
    restarts = ""
    if injected.restarts:
        restarts = f" (restarts {min(injected.restarts):.1f}-{max(injected.restarts):.1f} s)"
    recovery = "-" if verdict.settled_after is None else f"{verdict.settled_after:.1f} s{restarts}"
    record(name, injected.description, verdict, recovery)
    # What vendors saw meanwhile: every answer but a 2xx, by status (0: no answer at all).
    refused = Counter(s for hook in hooks for s in hook.statuses if not 200 <= s < 300)
    print(f"  ingest answers other than 2xx: {dict(refused) or 'none'}", flush=True)
    dead = [name for name in SERVICES if not stack.live(name)]
    assert not dead, f"services down after the scenario: {dead}"
    assert verdict.not_accepted == 0, "webhooks never acknowledged"
    given_up = verdict.given_up if given_up_ok else 0
    assert verdict.lost == 2 * given_up, verdict.problems
    others = verdict.duplicated - verdict.duplicated_messages
    assert others == given_up and verdict.duplicated_slack == 0, verdict.problems
    assert verdict.duplicated_messages <= email_window, verdict.problems
    assert verdict.settled_after is not None, "outcomes never settled"
    return verdict


def now() -> float:
    return time.monotonic()


async def all_ready(stack: FaultStack, timeout: float = 60) -> None:
    """Every live process answers /readyz 200 (broker and database reachable, consuming)."""
    async with httpx.AsyncClient(timeout=5) as client:
        for name in SERVICES:
            for proc in stack.live(name):
                deadline, status = time.monotonic() + timeout, 0
                while time.monotonic() < deadline and status != 200:
                    try:
                        status = (await client.get(proc.url + "/readyz")).status_code
                    except httpx.HTTPError:
                        status = 0
                    await asyncio.sleep(0.5)
                assert status == 200, f"{name} not ready: {proc.log.read_text()[-2000:]}"


async def meeting_while_slack_answers_late(stack: FaultStack) -> Webhook:
    """Post one meeting request while Slack takes messages but answers half a client timeout
    late; return once Slack has the first one, its answer still on its way."""
    slow = {"seconds": 60, "status": 200, "delay": SLACK_TIMEOUT / 2, "label": "slow ok"}
    await stack.outside.storm([slow])
    [hook] = [meeting(n) for n in stack.pool.take(1)]
    driver = Driver(lambda: stack.url("ingest"))
    try:
        await driver.send(hook)
    finally:
        await driver.close()
    deadline = now() + 60
    while not (await stack.outside.counts())["storm_answers"]:
        if now() > deadline:  # the setup failed, not the promise
            raise RuntimeError("no Slack request")
        await asyncio.sleep(0.05)
    return hook
