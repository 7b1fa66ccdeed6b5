"""Scenario 4: Slack answers 429 with Retry-After, then a 5xx storm, then nothing in time; the SMTP
server is down, then refuses with 4xx, then accepts. Every alert is delivered once the storm is
over, within BOUND seconds, and none twice.

The bound, from alerts' settings in the harness (fault_stack.service_env): an attempt that began
in the last second of the storm can wait one client timeout, then the longest back-off
(RETRY_MAX), then an open circuit (CIRCUIT_OPEN) before its trial; plus the poll interval and
MARGIN for a loaded machine. With production settings (10 s timeout, 300 s back-off cap, 60 s
circuit) the same sum is about 6 minutes.
"""

from __future__ import annotations

import asyncio

import pytest
from fault_report import record
from fault_stack import CIRCUIT_OPEN, RETRY_MAX, SLACK_TIMEOUT, FaultStack, long_mode
from ledger import Signature, settle
from scenario import Injected, judge, now, under_load

pytestmark = pytest.mark.integration

PHASE = 10.0 if long_mode() else 4.0  # seconds of each kind of bad weather
MARGIN = 15.0
BOUND = SLACK_TIMEOUT + RETRY_MAX + CIRCUIT_OPEN + MARGIN


async def test_slack_and_smtp_storms_deliver_every_alert_once(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    slack_phases = [
        {"seconds": PHASE, "status": 429, "retry_after": 1, "label": "429 Retry-After 1"},
        {"seconds": PHASE, "status": 503, "label": "503"},
        # Held past the client's timeout, then refused: the client saw a timeout.
        {"seconds": PHASE, "status": 504, "delay": SLACK_TIMEOUT + 1, "label": "timeout"},
    ]

    async def inject() -> Injected:
        await stack.outside.storm(slack_phases)
        await stack.outside.smtp(up=False)  # connection refused
        await asyncio.sleep(PHASE)
        await stack.outside.smtp(up=True, refusing=True)  # 451 to every recipient
        await asyncio.sleep(PHASE)
        await stack.outside.smtp(up=True)
        await asyncio.sleep(PHASE)  # the rest of Slack's storm
        answered = await stack.outside.counts()
        storm = ", ".join(f"{k} x{v}" for k, v in answered["storm_answers"].items())
        smtp = f"SMTP down {PHASE:.0f} s, 451 x{answered['smtp_refused']} in {PHASE:.0f} s"
        return Injected(f"Slack {storm}; {smtp}", now(), [])

    hooks, injected = await under_load(stack, inject, tail=0.5)
    # 429s never give up and transient failures give up only by age (a day): every alert is
    # delivered, none twice, within the bound.
    verdict = await judge(stack, "4 slack+smtp storms", hooks, injected, expected, timeout=60)
    answered = (await stack.outside.counts())["storm_answers"]
    assert set(answered) == {p["label"] for p in slack_phases}, "every phase met some attempt"
    # Settled: every delivery done, sent or given up (and shown as failed).
    assert verdict.settled_after is not None and verdict.settled_after <= BOUND, (
        f"done {verdict.settled_after} s after the storm, bound {BOUND:.0f} s"
    )


def test_a_resent_email_keeps_its_message_id() -> None:
    from tandem_alerts.adapters.email import build_message
    from tandem_alerts.domain.email_render import RenderedEmail

    rendered = RenderedEmail(subject="s", text="t", html="<p>t</p>")
    key = "alert-1:ava.ae:email"
    first, again = (
        build_message(rendered, sender="a@tandem.example", to="b@x.com", message_key=key)
        for _ in range(2)
    )
    assert first["Message-ID"] == again["Message-ID"]


async def test_a_long_429_storm_loses_no_alert(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    """Slack rate-limits every call, for longer than one Retry-After: alerts wait, none gives up.

    Before 429s stopped counting towards giving up, a delivery that met the storm from its start
    was given up (seen in a long run: 4 deliveries in 8 s of 429s).
    """
    # Retry-After 1 s: the head of each channel's queue meets about one 429 per second of storm.
    storm = 8.0 if long_mode() else 3.0

    async def inject() -> Injected:
        await stack.outside.storm(
            [{"seconds": storm, "status": 429, "retry_after": 1, "label": "429 Retry-After 1"}]
        )
        await asyncio.sleep(storm)
        answered = (await stack.outside.counts())["storm_answers"]
        return Injected(f"Slack 429 Retry-After 1 for {storm:.0f} s ({answered})", now(), [])

    hooks, injected = await under_load(stack, inject, lead_in=0.5, tail=0.5, rate=1.0)
    await judge(stack, "4 slack 429 storm", hooks, injected, expected, timeout=60)


async def test_an_outage_longer_than_the_retry_schedule_loses_no_alert(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    # Retries back off up to RETRY_MAX and never give up for attempts (only for age, a day):
    # an outage of several capped intervals (16 s here, 32 s in long mode) loses nothing.
    outage = (4 if long_mode() else 2) * RETRY_MAX

    async def inject() -> Injected:
        await stack.outside.storm([{"seconds": outage, "status": 503, "label": "503"}])
        await asyncio.sleep(outage)
        answered = (await stack.outside.counts())["storm_answers"]
        return Injected(f"Slack 503 for {outage:.0f} s ({answered})", now(), [])

    hooks, injected = await under_load(stack, inject, lead_in=0.5, tail=0.5, rate=0.2)
    # Whatever still retries is out within RETRY_MAX + CIRCUIT_OPEN; what gave up never is.
    verdict = await settle(stack, hooks, expected, since=injected.ended_at, timeout=20, quiet=1)
    record("4 slack outage > retries", injected.description, verdict)
    assert verdict.lost == 0, verdict.problems
