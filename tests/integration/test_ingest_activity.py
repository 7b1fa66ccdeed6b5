"""Sales activity from every source stops the SLA clock and shows as time-to-first-touch.

Ingest (with its lookup worker against a local server speaking HubSpot's CRM API), the SLA
monitor and the gateway's projections run in this loop on the session's broker and database. A
handoff is routed (a routing decision on the topic), then a rep's call arrives: as a HubSpot
webhook that carries ids only, as an Outreach webhook, or as a generic `activity` record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import orjson
import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from hubspot_crm_server import FakeHubSpotCrm, rate_limited, unavailable
from in_process import running
from outreach_api_server import FakeOutreach
from test_gateway_support import gateway_for, gateway_settings, issue_key, migrate_gateway
from test_ingest_harness import (
    IngestHarness,
    hubspot_v3_headers,
    running_ingest,
    standard_webhook_headers,
)
from test_sla_support import REP, REP_CRM_ID, Running, decision, running_sla, write_config

from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain.authz import Role
from tandem_api_gateway.main import build_service as build_gateway
from tandem_ingest.adapters.tables import lookups
from tandem_ingest.domain.signatures import sign_outreach
from tandem_ingest.settings import HubSpotApiSettings, LookupSettings, OutreachApiSettings
from tandem_shared import topics
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType, RoutingDecided

pytestmark = pytest.mark.integration

HUBSPOT_SECRET = "hubspot-test-client-secret"
OUTREACH_SECRET = "outreach-test-webhook-secret"
DIALER_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REP_EMAIL = f"{REP}@tandem.example"  # the SLA test directory's rep
SOURCES = {
    "sources": [
        {"name": "hubspot", "kind": "hubspot", "dev_secrets": [HUBSPOT_SECRET]},
        {"name": "dialer", "kind": "generic", "dev_secrets": [DIALER_SECRET]},
        {
            "name": "outreach",
            "kind": "outreach",
            "dev_secrets": [OUTREACH_SECRET],
            "config": {"crm": "salesforce"},
        },
    ]
}
ESCALATION = """\
  - notify: manager
    after_breach_minutes: 60
"""


@dataclass
class Stack:
    ingest: IngestHarness
    crm: FakeHubSpotCrm
    outreach: FakeOutreach
    sla: Running
    gateway: httpx.AsyncClient
    leader_key: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    crm, outreach = FakeHubSpotCrm(page_size=1), FakeOutreach()  # associations come in pages
    await crm.start()
    await outreach.start()
    apis = {
        "hubspot": HubSpotApiSettings(access_token=crm.token, base_url=crm.base_url),
        "outreach": OutreachApiSettings(access_token=outreach.token, base_url=outreach.base_url),
        "lookups": LookupSettings(poll_seconds=0.2, retry_base_seconds=0.2),
    }
    config_dir = write_config(tmp_path_factory.mktemp("activity-sla"), escalation=ESCALATION)
    await migrate_gateway(infra)
    settings = gateway_settings(infra)
    gateway = build_gateway(
        settings, group=f"gateway-activity-{uuid.uuid4().hex[:8]}", with_relay=False
    )
    key = await issue_key(gateway.infra.sessions, settings, Role.REVOPS_ADMIN, "lea.leader")
    app = create_app(
        gateway=gateway_for(settings, gateway.infra.sessions), runtime_getter=lambda: None
    )
    try:
        async with (
            running_ingest(infra, SOURCES, **apis) as ingest,
            running_sla(infra, config_dir) as sla,
            running(gateway.infra),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway"
            ) as client,
        ):
            yield Stack(ingest, crm, outreach, sla, client, key)
    finally:
        await crm.stop()
        await outreach.stop()


def _ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)  # HubSpot keeps milliseconds


async def handed_off(stack: Stack, account: str, contact: str) -> tuple[str, datetime]:
    """Route a meeting request of `contact` at `account` to the rep; return it once timed."""
    handoff, decided_at = f"h-{uuid.uuid4().hex[:8]}", _ms(stack.sla.now())
    routed = decision(handoff, decided_at=decided_at, account_key=account)
    payload = routed.payload(RoutingDecided).model_copy(update={"contact_email": contact})
    envelope = Envelope.wrap(payload, type=routed.type, source="/test", subject=account)
    await stack.sla.produce(topics.ROUTING, envelope)
    await stack.sla.events.wait_for(handoff, EventType.SLA_STARTED)
    return handoff, decided_at


async def first_touch(
    stack: Stack, handoff: str, activity_id: str, touched_at: datetime, decided_at: datetime
) -> None:
    """The activity stopped the clock at `touched_at`; the gateway shows the time to first touch."""
    [met] = await stack.sla.events.wait_for(handoff, EventType.SLA_MET)
    assert met.data["within_sla"] is True
    assert met.data["met_by_activity_id"] == activity_id
    headers = {"Authorization": f"Bearer {stack.leader_key}"}
    expected = (touched_at - decided_at).total_seconds()
    async with asyncio.timeout(20):
        while True:
            view = (await stack.gateway.get(f"/v1/handoffs/{handoff}", headers=headers)).json()
            if view.get("sla", {}).get("time_to_first_touch_seconds") is not None:
                break
            await asyncio.sleep(0.05)
    assert view["sla"]["time_to_first_touch_seconds"] == expected
    assert view["sla"]["outcome"] == "met"


def hubspot_webhook(*events: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """A webhook batch as HubSpot sends it, signed per v3 for the harness's URL."""
    body = orjson.dumps(list(events))
    return body, hubspot_v3_headers(HUBSPOT_SECRET, "http://ingest.test/v1/webhooks/hubspot", body)


def call_created(call_id: str) -> dict[str, object]:
    """HubSpot's generic `object.creation` webhook of a call: ids, nothing else."""
    return {
        "eventId": int(uuid.uuid4().int % 10**9),
        "subscriptionId": 2001,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(datetime.now().timestamp() * 1000),
        "subscriptionType": "object.creation",
        "attemptNumber": 0,
        "objectId": int(call_id),
        "objectTypeId": "0-48",
        "changeSource": "CRM",
        "changeFlag": "NEW",
    }


def logged_call(stack: Stack, touched_at: datetime) -> tuple[str, str, str]:
    """A call by the rep on a contact of a company, in the CRM; return (call id, account, email)."""
    n = uuid.uuid4().int % 10**9
    call, contact, company = str(10**10 + n), str(2 * 10**10 + n), str(3 * 10**10 + n)
    assistant = str(4 * 10**10 + n)  # on the call too, with no email: the next page has one
    account = f"acct-{n}.com"
    email = f"dana@{account}"
    stamp = touched_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    stack.crm.add(
        "calls", call, hubspot_owner_id=REP_CRM_ID, hs_timestamp=stamp, hs_call_title="Intro"
    )
    stack.crm.add("contacts", contact, email=email, associatedcompanyid=company)
    stack.crm.add("companies", company, domain=account, name="Acct")
    stack.crm.add("contacts", assistant, email=None, associatedcompanyid=None)
    stack.crm.associate("calls", call, "contacts", assistant)
    stack.crm.associate("calls", call, "contacts", contact)
    return call, account, email


async def test_a_hubspot_call_sent_as_ids_stops_the_clock(stack: Stack) -> None:
    touched_at = _ms(stack.sla.now() + timedelta(seconds=10))
    call, account, email = logged_call(stack, touched_at)
    handoff, decided_at = await handed_off(stack, account, email)

    body, headers = hubspot_webhook(call_created(call))
    response = await stack.ingest.client.post("/v1/webhooks/hubspot", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["deferred"] == 1

    [(_, logged)] = await stack.ingest.events.wait_for(
        lambda e: e.type == EventType.ACTIVITY_LOGGED and e.data["activity_id"] == call
    )
    assert logged.subject == account
    assert logged.data["actor_id"] == REP_CRM_ID and logged.data["contact_email"] == email
    assert logged.data["kind"] == "call" and logged.data["subject"] == "Intro"
    await first_touch(stack, handoff, call, touched_at, decided_at)

    # HubSpot's retry of the same delivery queues nothing and publishes nothing again.
    again = await stack.ingest.client.post("/v1/webhooks/hubspot", content=body, headers=headers)
    assert again.json()["duplicates"] == 1


async def test_a_generic_activity_record_stops_the_clock(stack: Stack) -> None:
    n = uuid.uuid4().hex[:8]
    account, email = f"dial-{n}.com", f"lee@dial-{n}.com"
    handoff, decided_at = await handed_off(stack, account, email)
    touched_at = decided_at + timedelta(seconds=7)
    record = {
        "kind": "activity",
        "id": f"call-{n}",
        "activity": "call",
        "rep": REP_EMAIL.upper(),
        "contact_email": email,
        "source": "aircall",
        "crm": "hubspot",
        "occurred_at": touched_at.isoformat(),
    }
    body = orjson.dumps(record)
    headers = standard_webhook_headers(DIALER_SECRET, body)
    response = await stack.ingest.client.post("/v1/webhooks/dialer", content=body, headers=headers)
    assert response.status_code == 202, response.text
    await first_touch(stack, handoff, f"aircall:call-{n}", touched_at, decided_at)

    unknown_kind = {**record, "id": "x1", "activity": "fax"}
    nobody = {**record, "id": "x2", "contact_email": None}
    bad = orjson.dumps({"events": [unknown_kind, nobody]})
    refused = await stack.ingest.client.post(
        "/v1/webhooks/dialer", content=bad, headers=standard_webhook_headers(DIALER_SECRET, bad)
    )
    assert refused.status_code == 422
    locs = [e["loc"] for e in refused.json()["detail"]]
    assert locs == [["events", 0, "activity"], ["events", 1]]
    forged = await stack.ingest.client.post(
        "/v1/webhooks/dialer", content=body, headers={**headers, "webhook-signature": "v1,AAAA"}
    )
    assert forged.status_code == 401


async def test_an_outreach_call_stops_the_clock(stack: Stack) -> None:
    n = uuid.uuid4().int % 10**8
    account, email = f"reach-{n}.com", f"kim@reach-{n}.com"
    user, prospect, company = str(n), str(n + 1), str(n + 2)
    stack.outreach.users[user] = REP_EMAIL
    stack.outreach.prospects[prospect] = ([email], company)
    stack.outreach.accounts[company] = f"www.{account}"
    handoff, decided_at = await handed_off(stack, account, email)
    touched_at = decided_at + timedelta(seconds=4)
    webhook = {
        "data": {
            "type": "call",
            "id": n,
            "attributes": {"direction": "outbound", "completedAt": touched_at.isoformat()},
            "relationships": {
                "prospect": {"data": {"type": "prospect", "id": int(prospect)}},
                "user": {"data": {"type": "user", "id": int(user)}},
            },
        },
        "meta": {"deliveredAt": touched_at.isoformat(), "eventName": "call.created"},
    }
    body = orjson.dumps(webhook)
    headers = {
        "content-type": "application/vnd.api+json",
        "Outreach-Webhook-Signature": sign_outreach(body=body, secret=OUTREACH_SECRET),
    }
    response = await stack.ingest.client.post(
        "/v1/webhooks/outreach", content=body, headers=headers
    )
    assert response.status_code == 202, response.text
    await first_touch(stack, handoff, f"outreach:call:{n}", touched_at, decided_at)
    # One read of the rep and one of the prospect with its account (included), by id.
    assert ("/api/v2/users", [user]) in stack.outreach.requests
    assert ("/api/v2/prospects", [prospect]) in stack.outreach.requests

    forged = {**headers, "Outreach-Webhook-Signature": "0" * 64}
    refused = await stack.ingest.client.post("/v1/webhooks/outreach", content=body, headers=forged)
    assert refused.status_code == 401


async def test_crm_api_rate_limits_and_outages_delay_but_lose_nothing(stack: Stack) -> None:
    touched_at = _ms(stack.sla.now() + timedelta(seconds=3))
    call, account, email = logged_call(stack, touched_at)
    handoff, decided_at = await handed_off(stack, account, email)
    stack.crm.script(rate_limited(retry_after=1), unavailable(), rate_limited(retry_after=1))
    seen = len(stack.crm.requests)

    body, headers = hubspot_webhook(call_created(call))
    response = await stack.ingest.client.post("/v1/webhooks/hubspot", content=body, headers=headers)
    assert response.status_code == 202, response.text  # answered at once, whatever HubSpot does

    await first_touch(stack, handoff, call, touched_at, decided_at)
    statuses = [r.status for r in stack.crm.requests[seen:]]
    assert statuses[:3] == [429, 503, 429] and statuses[3] in (200, 207)
    pending = await stack.ingest.scalar(sa.select(sa.func.count()).select_from(lookups))
    assert pending == 0
    # Published once, after three failed reads (the topics read to their end before counting).
    published = await stack.ingest.events.wait_for(
        lambda e: e.type == EventType.ACTIVITY_LOGGED and e.data["activity_id"] == call
    )
    assert len(published) == 1
