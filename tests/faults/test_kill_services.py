"""Scenario 1: SIGKILL each service at random moments under load, several times, and restart it.
Every acknowledged webhook yields exactly one decision, one clock and one message per recipient
and channel, and the gateway's read models equal the undisturbed run's."""

from __future__ import annotations

import asyncio
import random

import pytest
from fault_config import TEAM
from fault_stack import LEASE, SERVICES, FaultStack, long_mode
from ledger import Signature, settle
from scenario import Injected, judge, meeting_while_slack_answers_late, now, under_load

pytestmark = pytest.mark.integration

# Long: each service on its own, three kills each, restarted as soon as it is gone. Short (CI):
# every service killed once at a random moment within one load window, the restarts overlapping:
# the same faults for a fraction of the wall time.
KILLS = 3 if long_mode() else 1
VICTIMS = [(name,) for name in SERVICES] if long_mode() else [SERVICES]


@pytest.mark.parametrize("victims", VICTIMS, ids="+".join)
async def test_sigkill_under_load_loses_and_repeats_nothing(
    stack: FaultStack, expected: dict[str, Signature], victims: tuple[str, ...]
) -> None:
    rng = random.Random()

    async def inject() -> Injected:
        restarts: list[asyncio.Future[float]] = []
        for service in victims:
            for _ in range(KILLS):
                # A random moment: mid-request, mid-batch, mid-relay, wherever the load is.
                await asyncio.sleep(rng.uniform(0.2, 2.5))
                await stack.kill(service)
                await asyncio.sleep(rng.uniform(0.0, 1.0))  # dead a while, as under Kubernetes
                restart = asyncio.ensure_future(stack.healthy(stack.spawn(service), now()))
                if long_mode():
                    await restart  # one at a time: each kill meets a whole system
                restarts.append(restart)
        seconds = list(await asyncio.gather(*restarts))
        return Injected(f"SIGKILL {'+'.join(victims)} x{KILLS} each", now(), seconds)

    hooks, injected = await under_load(stack, inject)
    name = "all" if len(victims) > 1 else victims[0]
    # A killed sender may have sent without recording it: the next sender finds a Slack message
    # in its conversation (the test below), but an email it was sending goes out again (with its
    # Message-ID) when the lease expires: one per AE's mailbox (alerts/delivery.py).
    window = TEAM * KILLS if "alerts" in victims else 0
    await judge(
        stack, f"1 kill {name}", hooks, injected, expected, timeout=240, email_window=window
    )


async def test_a_slack_message_whose_sender_was_killed_before_recording_it_goes_once(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    # Slack takes the messages but answers late; alerts is killed while the answers are on
    # their way, so nothing is recorded. The next sender, once the lease expired, finds the
    # messages in their conversations (by the deliveries in their metadata) and records them.
    hook = await meeting_while_slack_answers_late(stack)
    await stack.kill("alerts")
    await stack.start("alerts")
    await stack.outside.storm([])
    verdict = await settle(stack, [hook], expected, since=now(), timeout=60, quiet=LEASE + 3)
    assert verdict.lost == 0, verdict.problems
    counts = await stack.outside.counts()
    # One message to the AE and one to the marketer (an email in flight may go twice: above).
    assert sorted(counts["slack"][str(hook.account)].values()) == [1, 1], counts["slack"]
    assert counts["history_calls"] > 0, "the next sender looked before posting again"
