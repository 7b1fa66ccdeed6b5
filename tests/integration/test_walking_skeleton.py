"""The walking skeleton: a signed meeting request for a Tier 1 account reaches the AE on Slack.

Real processes end to end: ingest -> Kafka -> router -> Kafka -> alerts -> slack_sdk ->
a local server that speaks Slack's Web API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from service_processes import Stack
from skeleton_stack import Account, meeting_request, process, running_stack
from slack_server import FakeSlack

SERVICES = ("ingest", "router", "sla-monitor", "alerts")
ACCOUNT = Account.fresh("skeleton")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(infra, tmp_path_factory) -> AsyncIterator[tuple[Stack, FakeSlack, Path]]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("skeleton")
    async with running_stack(infra, tmp, [ACCOUNT], SERVICES) as running:
        yield running


async def test_meeting_request_for_tier1_account_reaches_the_ae_on_slack(stack) -> None:  # type: ignore[no-untyped-def]
    services, slack, config = stack
    body, headers = meeting_request(config, ACCOUNT)
    async with httpx.AsyncClient(base_url=process(services, "ingest").url) as client:
        response = await client.post("/v1/webhooks/demo", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text

    ava = "U0AVA0001"  # Ava Thompson, the account's AE

    def to_ava() -> list:  # type: ignore[type-arg]
        # Other test modules' alerts may also reach Ava: count this account's only.
        return [m for m in slack.messages if m.channel == ava and ACCOUNT.name in m.text]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not to_ava():
        await asyncio.sleep(0.2)
    assert len(to_ava()) == 1, [(m.channel, m.text[:80]) for m in slack.messages]
    assert ACCOUNT.key in to_ava()[0].text + str(to_ava()[0].blocks)
    # Nothing more arrives for her: one handoff, one message.
    await asyncio.sleep(2)
    assert len(to_ava()) == 1
