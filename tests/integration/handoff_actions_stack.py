"""Router, SLA monitor, alerts and gateway in-process, for the handoff-action tests (no tests).

Every service runs from its `build_service()` against the session's broker and database with a
fresh consumer group started at the topics' end, and handles only this run's accounts (the
topics also carry other modules' events). Slack is the local Web API server; clicks are signed
as Slack signs them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
import yaml
from in_process import running
from slack_sdk.signature import SignatureVerifier
from test_alerts_support import SmtpInbox, local_transports, smtp_server
from test_gateway_support import gateway_settings, issue_key
from test_sla_support import Collector

from kafka_tools import produce_envelopes, start_group_at_end
from slack_server import FakeSlack, Received
from tandem_alerts import main as alerts_main
from tandem_alerts.settings import (
    AlertsOptions,
    AlertsSettings,
    LinkSettings,
)
from tandem_api_gateway import main as gateway_main
from tandem_api_gateway.domain.authz import Role
from tandem_router import main as router_main
from tandem_router.adapters import repository
from tandem_router.domain.model import AccountState
from tandem_shared import topics
from tandem_shared.availability import people_availability
from tandem_shared.consumer import ConsumerLoop, Handler
from tandem_shared.db import migrate
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import (
    AccountUpserted,
    CrmSystem,
    EngagementKind,
    EngagementRecorded,
    EventType,
    TalFinalized,
    Tier,
)
from tandem_shared.settings import OutboxSettings
from tandem_shared.uow import UnitOfWork
from tandem_sla_monitor import main as sla_main
from tandem_sla_monitor.settings import SlaMonitorSettings, SlaSettings

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "slack-signing-secret-for-handoff-actions"
LINK_SECRET = "email-link-secret-for-handoff-actions"
WATCHED = [topics.ROUTING, topics.SLA, topics.HANDOFF_ACTIONS, topics.ALERT_REQUESTS, topics.PEOPLE]
# A rep of these tests only, so the availability she sets stays out of other modules' way.
OONA = {
    "id": "oona.ae",
    "name": "Oona Berg",
    "email": "oona@tandem.example",
    "role": "ae",
    "team": "sales",
    "slack_user_id": "U0OONA010",
    "manager_id": "sam.manager",
    "timezone": "America/New_York",
    "territories": ["na-east"],
    "cover_id": "ben.ae",
}


def people_doc() -> dict[str, Any]:
    """The example people, told in Slack at any hour (no quiet hours, no digests); Ava by email
    too."""
    doc = yaml.safe_load((ROOT / "config/example/people.yaml").read_text())
    doc["people"].append(dict(OONA))
    for person in doc["people"]:
        channels = ["slack", "email"] if person["id"] == "ava.ae" else ["slack"]
        person["preferences"] = {"channels": channels, "digest": "off"}
    return doc


@dataclass
class Mailbox(SmtpInbox):
    """What the aiosmtpd server received, read as the handoff tests need it."""

    def text_about(self, address: str, handoff_id: str) -> list[str]:
        """Return the plain-text bodies of emails to `address` about a handoff."""
        bodies = []
        for message in self.messages:
            part = message.get_body(preferencelist=("plain",))
            text = part.get_content() if part is not None else ""
            if message["To"] == address and handoff_id in json.dumps(text):
                bodies.append(text)
        return bodies


def only(run: str, handler: Handler) -> Handler:
    """Handle only this run's events (its accounts' keys end with -<run>.com)."""

    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        ours = (envelope.subject or "").endswith(f"-{run}.com") or envelope.subject == OONA["id"]
        if ours:
            await handler(envelope, uow)

    return handle


@dataclass
class Stack:
    run: str
    slack: FakeSlack
    events: Collector
    alerts: httpx.AsyncClient
    gateway: httpx.AsyncClient
    keys: dict[str, str]  # person id -> API key
    bootstrap: str
    router_sessions: Any
    mailbox: Mailbox

    async def router_knows_availability(self, person_id: str, *, away: bool) -> None:
        """Wait until the router stored a person's run-time availability (away or back)."""

        async def stored() -> bool:
            async with self.router_sessions() as session:
                state = (
                    await session.execute(
                        sa.select(people_availability.c.state).where(
                            people_availability.c.person_id == person_id
                        )
                    )
                ).scalar()
            return state is not None and bool(state.get("out_of_office")) is away

        await self.wait_async(stored)

    async def router_state(self, key: str) -> AccountState | None:
        async with self.router_sessions() as session:
            found = await repository.get_account(session, key)
        return found.state if found is not None else None

    def account(self, name: str) -> str:
        return f"{name}-{self.run}.com"

    async def listed_tier1(self, key: str, *, ae_id: str = "ava.ae") -> None:
        """Put the account on the TAL at tier 1: Ava (AE), Dan (SDR), NA-East."""
        payload = TalFinalized(
            account_key=key,
            name=key.split("-")[0].title(),
            tier=Tier.T1,
            ae_id=ae_id,
            sdr_id="dan.sdr",
            marketer_id="mia.marketing",
            territory="na-east",
            finalized_at=utcnow(),
        )
        envelope = Envelope.wrap(payload, type=EventType.TAL_FINALIZED, source="/test", subject=key)
        await produce_envelopes(self.bootstrap, topics.TAL, [envelope])
        # The TAL and meeting requests travel on different topics: route only once it is listed.
        await self.wait_async(lambda: self._listed(key))

    async def _listed(self, key: str) -> bool:
        state = await self.router_state(key)
        return state is not None and state.in_tal

    async def crm_owner(self, key: str, owner_id: str) -> None:
        """Say in the CRM that someone else owns the account (an ownership conflict)."""
        payload = AccountUpserted(
            crm=CrmSystem.HUBSPOT,
            crm_id=f"co-{key}",
            account_key=key,
            domain=key,
            owner_id=owner_id,
            occurred_at=utcnow(),
        )
        envelope = Envelope.wrap(
            payload, type=EventType.ACCOUNT_UPSERTED, source="/test", subject=key
        )
        await produce_envelopes(self.bootstrap, topics.CRM, [envelope])
        await self.wait_async(lambda: self._crm_owned(key))

    async def _crm_owned(self, key: str) -> bool:
        state = await self.router_state(key)
        return state is not None and state.crm.ae_id is not None

    async def meeting(self, key: str, *, routed: bool = True) -> str:
        """Send a meeting request at the account; return its handoff id once routed."""
        payload = EngagementRecorded(
            engagement_id=f"m-{uuid.uuid4().hex[:8]}",
            source="segment",
            kind=EngagementKind.MEETING_REQUEST,
            account_key=key,
            contact_email=f"jo@{key}",
            occurred_at=utcnow(),
        )
        envelope = Envelope.wrap(
            payload, type=EventType.ENGAGEMENT_RECORDED, source="/test", subject=key
        )
        await produce_envelopes(self.bootstrap, topics.ENGAGEMENT, [envelope])
        wanted = EventType.ROUTING_DECIDED if routed else EventType.ROUTING_CONFLICT
        decided = await self.wait(
            lambda: [
                e
                for _, e in self.events.received
                if e.type == wanted and e.subject == key and e.data.get("handoff_id")
            ]
        )
        return str(decided[0].data["handoff_id"])

    async def message_to(self, slack_user: str, handoff_id: str, *, count: int = 1) -> Received:
        """Wait for the `count`th Slack message about a handoff to a user; return it."""
        found = await self.wait(
            lambda: [
                r for r in self.slack.to(slack_user) if r.ok and handoff_id in json.dumps(r.blocks)
            ][count - 1 :]
        )
        return found[0]

    async def click(
        self,
        slack_user: str,
        message: Received,
        action_id: str,
        *,
        channel: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """Click a control of a message as Slack sends it (signed, form-encoded)."""
        (actions,) = [b for b in message.blocks if b["type"] == "actions"]
        action = {"action_id": action_id, "block_id": actions["block_id"], "type": "button"}
        payload = {
            "type": "block_actions",
            "user": {"id": slack_user},
            "channel": {"id": channel or message.channel},
            "container": {"type": "message", "message_ts": message.ts},
            "trigger_id": f"trigger-{uuid.uuid4().hex[:8]}",
            "actions": [{**action, **extra}],
        }
        return await self.interact(payload)

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        return await self.signed("/v1/slack/interactions", {"payload": json.dumps(payload)})

    async def command(self, slack_user: str, text: str) -> httpx.Response:
        """Type `/tandem <text>` in Slack."""
        form = {
            "command": "/tandem",
            "text": text,
            "user_id": slack_user,
            "team_id": "T0TANDEM1",
            "channel_id": "D0TANDEM",
            "trigger_id": f"trigger-{uuid.uuid4().hex[:8]}",
        }
        return await self.signed("/v1/slack/commands", form)

    async def signed(self, path: str, form: dict[str, str]) -> httpx.Response:
        body = urlencode(form).encode()
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(
            timestamp=timestamp, body=body
        )
        headers = {
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return await self.alerts.post(path, content=body, headers=headers)

    async def act(self, person: str, handoff_id: str, **body: Any) -> httpx.Response:
        """Act on a handoff through the gateway's API with the person's key."""
        return await self.act_as(person, "POST", f"/v1/handoffs/{handoff_id}/actions", json=body)

    async def act_as(self, person: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """Call the gateway's API with the person's key."""
        headers = {"Authorization": f"Bearer {self.keys[person]}"}
        return await self.gateway.request(method, path, headers=headers, **kw)

    async def handoff(self, handoff_id: str, ready: Callable[[dict[str, Any]], bool]) -> Any:
        """Wait until the gateway's view of a handoff (as the manager sees it) is `ready`."""
        return await self.gateway_json("sam.manager", f"/v1/handoffs/{handoff_id}", ready)

    async def gateway_json(
        self, person: str, path: str, ready: Callable[[dict[str, Any]], bool]
    ) -> Any:
        """Wait until a gateway GET with the person's key answers 200 with a `ready` body."""

        async def read() -> dict[str, Any] | None:
            response = await self.act_as(person, "GET", path)
            data = response.json() if response.status_code == 200 else None
            return data if data is not None and ready(data) else None

        return await self.wait_async(read)

    def outcomes(self, handoff_id: str) -> list[Envelope]:
        taken, refused = EventType.HANDOFF_ACTION_TAKEN, EventType.HANDOFF_ACTION_REFUSED
        return [e for e in self.events.of(handoff_id) if e.type in (taken, refused)]

    async def wait(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := check()):
                await asyncio.sleep(0.05)
        return result

    async def wait_async(self, check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := await check()):
                await asyncio.sleep(0.05)
        return result


@asynccontextmanager
async def handoff_actions_stack(infra: Any, config_dir: Path) -> AsyncIterator[Stack]:
    """Run the four services on one config directory until the block ends."""
    run = uuid.uuid4().hex[:8]
    for name in ("routing.yaml", "sla.yaml"):
        shutil.copy(ROOT / "config/example" / name, config_dir / name)
    (config_dir / "people.yaml").write_text(yaml.safe_dump(people_doc(), allow_unicode=True))
    base = infra.settings(config_dir=config_dir, outbox=OutboxSettings(poll_seconds=0.1))
    slack = FakeSlack()
    await slack.start()
    mailbox = Mailbox()
    smtp_stack = ExitStack()
    smtp = smtp_stack.enter_context(smtp_server(mailbox, auth_require_tls=False))

    router_schema = f"router_it_{run}"
    await migrate(
        settings=base.database, schema=router_schema, script_location=router_main.MIGRATIONS
    )
    router = router_main.build_service(base, schema=router_schema, group=f"router-ha-{run}")

    sla_settings = SlaMonitorSettings(
        **base.model_dump(exclude={"outbox"}),
        outbox=OutboxSettings(poll_seconds=0.1),
        sla=SlaSettings(tick_seconds=0.2, consumer_group=f"sla-ha-{run}"),
    )
    await migrate(
        settings=base.database, schema=sla_main.SCHEMA, script_location=sla_main.MIGRATIONS
    )
    sla = sla_main.build_service(sla_settings)

    alerts_settings = AlertsSettings(
        env="test",
        service="alerts",
        config_dir=config_dir,
        kafka=base.kafka,
        database=base.database,
        outbox=base.outbox,
        **local_transports(slack, smtp.port, SIGNING_SECRET),
        links=LinkSettings(secret=LINK_SECRET, base_url="http://alerts/"),
        alerts=AlertsOptions(poll_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.5),
    )
    await migrate(
        settings=base.database, schema=alerts_main.SCHEMA, script_location=alerts_main.MIGRATIONS
    )
    alerts = alerts_main.build_service(alerts_settings, group=f"alerts-ha-{run}")

    gateway_config = gateway_settings(infra).model_copy(
        update={"config_dir": config_dir, "outbox": OutboxSettings(poll_seconds=0.1)}
    )
    await migrate(
        settings=base.database,
        schema=gateway_main.SCHEMA,
        script_location=gateway_main.MIGRATIONS,
    )
    gateway = gateway_main.build_service(gateway_config, group=f"gateway-ha-{run}")

    services = [router.infra, sla.infra, alerts.infra, gateway.infra]
    for infra_ in services:
        for worker in infra_.workers:
            if isinstance(worker, ConsumerLoop):
                await start_group_at_end(infra.bootstrap_servers, worker.group, worker.topics)
                worker.processor.handler = only(run, worker.processor.handler)
    keys = {
        person: await issue_key(gateway.infra.sessions, gateway_config, role, person)
        for person, role in (
            ("ava.ae", Role.REP),
            ("chloe.ae", Role.REP),
            ("oona.ae", Role.REP),
            ("sam.manager", Role.SALES),
        )
    }
    events = Collector(infra.bootstrap_servers, WATCHED)
    await events.start()
    alerts_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=alerts.app), base_url="http://alerts"
    )
    gateway_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway"
    )
    try:
        async with running(*services), alerts_http, gateway_http:
            loops = [w for s in services for w in s.workers if isinstance(w, ConsumerLoop)]
            async with asyncio.timeout(30):
                while not all(loop.assigned for loop in loops):
                    await asyncio.sleep(0.05)
            yield Stack(
                run,
                slack,
                events,
                alerts_http,
                gateway_http,
                keys,
                infra.bootstrap_servers,
                router.infra.sessions,
                mailbox,
            )
    finally:
        await events.stop()
        await slack.stop()
        smtp_stack.close()
