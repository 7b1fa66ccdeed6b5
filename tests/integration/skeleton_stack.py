"""The walking skeleton's stack: real service processes, a config with one Tier 1 account of the
run, the fake Slack Web API, and signed webhooks from the demo source."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from conftest import Infra

from kafka_tools import start_group_at_end
from service_processes import ServiceProcess, Stack, stack_env
from slack_server import FakeSlack
from tandem_ingest.domain.signatures import sign_standard_webhook
from tandem_ingest.domain.sources import parse_sources
from tandem_shared import topics

ROOT = Path(__file__).resolve().parents[2]
SLACK_TOKEN = "xoxb-tandem-test"


@dataclass(frozen=True)
class Account:
    """A Tier 1 account of one test module, owned by Ava: the shared topics also carry other
    modules' events, and the embedded broker cannot start a group at the end."""

    key: str
    name: str

    @classmethod
    def fresh(cls, prefix: str) -> Account:
        """Return an account no other test module uses."""
        suffix = uuid.uuid4().hex[:8]
        return cls(f"{prefix}-{suffix}.com", f"{prefix.title()} Labs {suffix}")


def config_dir(tmp: Path, accounts: Sequence[Account]) -> Path:
    """The example configuration with `accounts`, the AE reachable whatever the hour CI runs at."""
    config = tmp / "config"
    shutil.copytree(ROOT / "config/example", config)
    people = yaml.safe_load((config / "people.yaml").read_text())
    for person in people["people"]:
        person.get("preferences", {}).pop("quiet_hours", None)
        person["working_hours"] = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}
    (config / "people.yaml").write_text(yaml.safe_dump(people))
    listed = yaml.safe_load((config / "accounts.yaml").read_text())
    listed["accounts"].extend(
        {
            "account_key": account.key,
            "name": account.name,
            "tier": "1",
            "ae_id": "ava.ae",
            "marketer_id": "mia.marketing",
            "territory": "na-east",
        }
        for account in accounts
    )
    (config / "accounts.yaml").write_text(yaml.safe_dump(listed))
    return config


def _demo_secret(config: Path) -> str:
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    return parse_sources(sources, environ={}, production=False)["demo"].secrets[0]


def meeting_request(config: Path, account: Account) -> tuple[bytes, dict[str, str]]:
    """Return the body and signed headers of a demo-source meeting request from `account`."""
    # Now, not a fixed date: the SLA clock runs from it, and a request days old would already
    # be breached, its warning, breach and escalations reaching the AE within the test.
    occurred_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = (
        b'{"kind": "engagement", "id": "mr-' + uuid.uuid4().hex.encode() + b'", '
        b'"event": "meeting_request", "email": "jane@' + account.key.encode() + b'", '
        b'"name": "Jane Doe", '
        b'"occurred_at": "' + occurred_at.encode() + b'"}'
    )
    msg_id, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard_webhook(
            body=body, msg_id=msg_id, timestamp=ts, secret=_demo_secret(config)
        ),
    }
    return body, headers


_POSITIONED: set[str] = set()  # the service groups already moved to the end in this session


async def _groups_at_end(bootstrap: str) -> None:
    """Start the services' groups at the topics' end, the first time a stack runs.

    The session's topics hold every earlier module's events (thousands of alert requests by
    then): without this, the first stack's services would work through all of them first. A
    later stack continues where the previous one stopped (the broker still counts that stack's
    members for a while, and refuses commits from outside meanwhile).
    """
    data_topics = [spec.name for spec in topics.DATA_TOPICS]
    for group in topics.CONSUMER_GROUPS:
        if group not in _POSITIONED:
            await start_group_at_end(bootstrap, group, data_topics)
            _POSITIONED.add(group)


@asynccontextmanager
async def running_stack(
    infra: Infra,
    tmp: Path,
    accounts: Sequence[Account],
    services: Sequence[str],
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Stack, FakeSlack, Path]]:
    """Migrate and start `services` against the fake Slack; stop them all on the way out."""
    config = config_dir(tmp, accounts)
    slack = FakeSlack(token=SLACK_TOKEN)
    await slack.start()
    env = stack_env(
        bootstrap=infra.bootstrap_servers, database_url=infra.database_url, config_dir=config
    )
    env.update({"TANDEM_SLACK__BOT_TOKEN": SLACK_TOKEN, "TANDEM_SLACK__BASE_URL": slack.base_url})
    # Whatever of the session's earlier alert requests the broker still hands the first stack's
    # alerts group goes out fast: Slack pacing has tests of its own (test_alerts_delivery).
    env.update(
        {"TANDEM_ALERTS__PACING_RATE_PER_SECOND": "100", "TANDEM_ALERTS__PACING_BURST": "100"}
    )
    env.update(extra_env or {})
    stack = Stack(env=env, log_dir=tmp)
    await _groups_at_end(infra.bootstrap_servers)
    try:
        for name in services:
            await asyncio.to_thread(stack.migrate, name)
        started = [stack.start(name) for name in services]
        for service in started:
            await stack.wait_healthy(service)
        yield stack, slack, config
    finally:
        await asyncio.to_thread(stack.stop_all)
        await slack.stop()


def process(stack: Stack, name: str) -> ServiceProcess:
    """Return the running process of service `name`."""
    return next(p for p in stack.processes if p.name == name)
