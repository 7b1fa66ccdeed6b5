"""The walking skeleton: a signed meeting request for a Tier 1 account reaches the AE on Slack.

Real processes end to end: ingest -> Kafka -> router -> Kafka -> alerts -> slack_sdk ->
a local server that speaks Slack's Web API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import yaml

from service_processes import Stack, stack_env
from slack_server import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "router", "sla-monitor", "alerts")
# A Tier 1 account of this run only, owned by Ava: the shared topics also carry other test
# modules' events about acme.com, and the embedded broker cannot start a group at the end.
ACCOUNT = f"skeleton-{uuid.uuid4().hex[:8]}.com"
ACCOUNT_NAME = f"Skeleton Labs {ACCOUNT.split('.')[0][-8:]}"


def _config_dir(tmp: Path) -> Path:
    """The example configuration, with the AE reachable whatever the hour CI runs at."""
    config = tmp / "config"
    shutil.copytree(ROOT / "config/example", config)
    people = yaml.safe_load((config / "people.yaml").read_text())
    for person in people["people"]:
        person.get("preferences", {}).pop("quiet_hours", None)
        person["working_hours"] = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}
    (config / "people.yaml").write_text(yaml.safe_dump(people))
    accounts = yaml.safe_load((config / "accounts.yaml").read_text())
    accounts["accounts"].append(
        {
            "account_key": ACCOUNT,
            "name": ACCOUNT_NAME,
            "tier": "1",
            "ae_id": "ava.ae",
            "marketer_id": "mia.marketing",
            "territory": "na-east",
        }
    )
    (config / "accounts.yaml").write_text(yaml.safe_dump(accounts))
    return config


def _demo_secret(config: Path) -> str:
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    items = sources["sources"]
    demo = (
        next(s for s in items if s["name"] == "demo") if isinstance(items, list) else items["demo"]
    )
    return str(demo["dev_secrets"][0])


def _sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(infra, tmp_path_factory) -> AsyncIterator[tuple[Stack, FakeSlack, Path]]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("skeleton")
    config = _config_dir(tmp)
    slack = FakeSlack(token="xoxb-tandem-test")
    await slack.start()
    env = stack_env(
        bootstrap=infra.bootstrap_servers, database_url=infra.database_url, config_dir=config
    )
    env.update(
        {"TANDEM_SLACK__BOT_TOKEN": "xoxb-tandem-test", "TANDEM_SLACK__BASE_URL": slack.base_url}
    )
    services = Stack(env=env, log_dir=tmp)
    try:
        for name in SERVICES:
            await asyncio.to_thread(services.migrate, name)
        started = [services.start(name) for name in SERVICES]
        for service in started:
            await services.wait_healthy(service)
        yield services, slack, config
    finally:
        await asyncio.to_thread(services.stop_all)
        await slack.stop()


async def test_meeting_request_for_tier1_account_reaches_the_ae_on_slack(stack) -> None:  # type: ignore[no-untyped-def]
    services, slack, config = stack
    ingest = next(p for p in services.processes if p.name == "ingest")
    body = (
        b'{"kind": "engagement", "id": "mr-' + uuid.uuid4().hex.encode() + b'", '
        b'"event": "meeting_request", "email": "jane@' + ACCOUNT.encode() + b'", '
        b'"name": "Jane Doe", '
        b'"occurred_at": "2026-11-23T15:00:00Z"}'
    )
    msg_id, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": _sign(_demo_secret(config), msg_id, ts, body),
    }
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        response = await client.post("/v1/webhooks/demo", content=body, headers=headers)
    assert response.status_code in (200, 202), response.text

    ava = "U0AVA0001"  # Ava Thompson, the account's AE

    def to_ava() -> list:  # type: ignore[type-arg]
        # Other test modules' alerts may also reach Ava: count this account's only.
        return [m for m in slack.messages if m.channel == ava and ACCOUNT_NAME in m.text]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not to_ava():
        await asyncio.sleep(0.2)
    assert len(to_ava()) == 1, [(m.channel, m.text[:80]) for m in slack.messages]
    assert ACCOUNT in to_ava()[0].text + str(to_ava()[0].blocks)
    # Nothing more arrives for her: one handoff, one message.
    await asyncio.sleep(2)
    assert len(to_ava()) == 1
