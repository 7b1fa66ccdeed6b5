"""The REST API on the real database: the handoff and alert 404 matrix, filters, TAL, limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncEngine
from test_gateway_support import (
    HUBSPOT_LEAD_URL,
    NOW,
    SALESFORCE_ACCOUNT_URL,
    Scenario,
    gateway_for,
    gateway_settings,
    project,
    seeded_gateway,
)

from tandem_api_gateway.app import create_app
from tandem_api_gateway.settings import GatewaySettings
from tandem_shared import events as ev
from tandem_shared.db import session_factory
from tandem_shared.envelope import Envelope
from tandem_shared.outbox import outbox

pytestmark = pytest.mark.integration


@dataclass
class Api:
    client: httpx.AsyncClient
    keys: dict[str, str]  # person id -> key
    scenario: Scenario
    engine: AsyncEngine
    settings: GatewaySettings

    async def get(self, person: str, path: str, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[person]}"}
        return await self.client.get(path, headers=headers, params=params)

    async def post(self, person: str, path: str, body: dict[str, object]) -> httpx.Response:
        return await self.client.post(path, headers={"X-API-Key": self.keys[person]}, json=body)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(infra: Infra) -> AsyncIterator[Api]:
    async with seeded_gateway(infra, uuid.uuid4().hex[:8], rate_limit_burst=10_000) as seeded:
        gateway = gateway_for(seeded.settings, seeded.sessions)
        app = create_app(gateway=gateway, runtime_getter=lambda: None)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Api(client, seeded.keys, seeded.scenario, seeded.engine, seeded.settings)


# Every endpoint with every role: test_gateway_authz.py.


async def test_requests_without_a_valid_key_are_refused(api: Api) -> None:
    assert (await api.client.get("/v1/accounts")).status_code == 401
    bad = {"Authorization": "Bearer tdm_000000000000_" + "x" * 43}
    response = await api.client.get("/v1/handoffs", headers=bad)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"error": "unauthorized", "detail": "invalid API key"}


@pytest.mark.parametrize(
    ("person", "visible"),
    [
        ("ava.ae", {"ava_handoff", "open_handoff"}),
        ("ben.ae", {"ben_handoff"}),
        ("sam.manager", {"ava_handoff", "open_handoff", "ben_handoff"}),
        ("lea.leader", {"ava_handoff", "open_handoff", "ben_handoff"}),
        ("mia.marketing", {"ava_handoff", "open_handoff", "ben_handoff"}),
    ],
)
async def test_handoffs_and_alerts_cross_object_matrix(
    api: Api, person: str, visible: set[str]
) -> None:
    s = api.scenario
    for name in ("ava_handoff", "open_handoff", "ben_handoff"):
        response = await api.get(person, f"/v1/handoffs/{getattr(s, name)}")
        assert response.status_code == (200 if name in visible else 404), name
        if response.status_code == 404:
            assert response.json()["error"] == "not_found"
    listed = {h["handoff_id"] for h in (await api.get(person, "/v1/handoffs")).json()["items"]}
    ours = {getattr(s, n) for n in ("ava_handoff", "open_handoff", "ben_handoff")}
    assert listed & ours == {getattr(s, n) for n in visible}
    alert_owner = {"ava_alert": "ava.ae", "ben_alert": "ben.ae"}
    for name, owner in alert_owner.items():
        response = await api.get(person, f"/v1/alerts/{getattr(s, name)}")
        leader = person not in ("ava.ae", "ben.ae")
        assert response.status_code == (200 if leader or person == owner else 404), name


async def test_a_rep_sees_no_other_people_in_a_handoff(api: Api) -> None:
    s = api.scenario
    rep_view = (await api.get("ava.ae", f"/v1/handoffs/{s.ava_handoff}")).json()
    leader_view = (await api.get("sam.manager", f"/v1/handoffs/{s.ava_handoff}")).json()
    assert rep_view["notified_ids"] == []
    assert leader_view["notified_ids"] == ["sam.manager"]
    assert leader_view["sla"]["outcome"] == "met"
    assert leader_view["sla"]["time_to_first_touch_seconds"] == 50 * 60


async def test_handoff_filters_breaches_and_time_remaining(api: Api) -> None:
    s = api.scenario
    open_items = (await api.get("lea.leader", "/v1/handoffs", status="open", tier="1")).json()
    mine = [h for h in open_items["items"] if h["handoff_id"] == s.open_handoff]
    assert mine[0]["sla"]["seconds_remaining"] == 50 * 60  # the clock is fixed at NOW
    breaches = (await api.get("lea.leader", "/v1/breaches", assignee="ben.ae")).json()["items"]
    assert s.ben_handoff in {h["handoff_id"] for h in breaches}
    assert all(h["sla"]["outcome"] == "breached" for h in breaches)


async def test_alerts_show_log_deliveries(api: Api) -> None:
    items = (await api.get("lea.leader", "/v1/alerts", channel="log")).json()["items"]
    alert = next(a for a in items if a["alert_id"] == api.scenario.ava_alert)
    assert [(d["recipient_id"], d["channel"], d["status"]) for d in alert["deliveries"]] == [
        ("ava.ae", "log", "delivered")
    ]


async def test_handoffs_alerts_and_accounts_link_to_their_crm_records(api: Api) -> None:
    s = api.scenario
    handoff = (await api.get("lea.leader", f"/v1/handoffs/{s.open_handoff}")).json()
    assert handoff["crm_url"] == HUBSPOT_LEAD_URL
    alerts = (await api.get("lea.leader", "/v1/alerts")).json()["items"]
    links = {a["alert_id"]: a["crm_url"] for a in alerts}
    assert links[s.ava_alert] == HUBSPOT_LEAD_URL
    assert links[s.ben_alert] == SALESFORCE_ACCOUNT_URL
    # An account takes the page of its CRM record (here alone, so the shared scenario keeps
    # its CRM links for the merge tests).
    key = f"initech-{s.tag}.com"
    record = ev.AccountUpserted(
        crm=ev.CrmSystem.SALESFORCE,
        crm_id=f"001{s.tag}",
        account_key=key,
        name="Initech",
        crm_url=SALESFORCE_ACCOUNT_URL,
        occurred_at=NOW,
    )
    envelope = Envelope.wrap(
        record, type=ev.EventType.ACCOUNT_UPSERTED, source="/test", subject=key, time=NOW
    )
    await project(session_factory(api.engine), [envelope])
    account = (await api.get("lea.leader", f"/v1/accounts/{key}")).json()
    assert (account["name"], account["crm_url"]) == ("Initech", SALESFORCE_ACCOUNT_URL)


async def test_an_account_shows_owners_engagement_intent_activity_and_open_handoffs(
    api: Api,
) -> None:
    s = api.scenario
    account = (await api.get("ava.ae", f"/v1/accounts/{s.acme}")).json()
    assert (account["tier"], account["in_tal"], account["tal_status"]) == ("1", True, "finalized")
    assert (account["name"], account["ae_id"]) == ("Acme", "ava.ae")
    assert (account["engagement_score"], account["engagement_count"]) == (8.0, 1)
    assert [(i["topic"], i["provider"], i["score"]) for i in account["intent"]] == [
        ("ABM", "bombora", 81)
    ]
    t0 = NOW - timedelta(hours=3)
    assert account["last_marketing_activity_at"] == _iso(t0 + timedelta(minutes=5))
    assert account["last_sales_activity_at"] == _iso(t0 + timedelta(minutes=50))
    assert account["open_handoffs"] == 1  # the open one; Ava's first was met
    assert account["tal_workflow_status"] is None  # finalized through events, never proposed
    listed = (await api.get("ava.ae", "/v1/accounts", tier="1", limit=200)).json()["items"]
    assert next(a for a in listed if a["account_key"] == s.acme) == account


async def test_the_timeline_is_newest_first_and_pages_without_gaps(api: Api) -> None:
    path = f"/v1/accounts/{api.scenario.acme}/timeline"
    whole = (await api.get("lea.leader", path, limit=200)).json()["items"]
    assert len(whole) >= 8
    times = [item["at"] for item in whole]
    assert times == sorted(times, reverse=True)
    kinds = {item["kind"] for item in whole}
    assert {"engagement", "intent", "routing", "sla", "alert", "sales_activity"} <= kinds
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("lea.leader", path, **params)).json()
        paged += page["items"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == whole


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def test_account_pagination_is_bounded_and_resumes(api: Api) -> None:
    first = (await api.get("lea.leader", "/v1/accounts", in_tal="true", limit=1)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = await api.get("lea.leader", "/v1/accounts", in_tal="true", cursor=first["next_cursor"])
    assert first["items"][0]["account_key"] not in {
        a["account_key"] for a in second.json()["items"]
    }
    assert (await api.get("lea.leader", "/v1/accounts", limit=201)).status_code == 422
    wrong = await api.get("lea.leader", "/v1/alerts", cursor=first["next_cursor"])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_cursor"


async def test_metrics_come_with_definitions_and_health(api: Api) -> None:
    report = (await api.get("sam.manager", "/v1/metrics/alignment", period="all")).json()
    assert report["health"] in ("green", "yellow", "red")
    names = {d["name"] for d in report["definitions"]}
    assert {"joint_account_coverage", "handoff_success_rate"} <= names
    assert report["sla_breached"] >= 1 and report["sla_met"] >= 1
    bad = await api.get(
        "sam.manager",
        "/v1/metrics/alignment",
        start="2025-03-02T00:00:00Z",
        end="2025-03-01T00:00:00Z",
    )
    assert bad.status_code == 422


async def test_metrics_filter_by_period_tier_and_team(api: Api) -> None:
    async def report(**params: object) -> dict[str, Any]:
        response = await api.get("sam.manager", "/v1/metrics/alignment", **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def verdicts(r: dict[str, Any]) -> tuple[int, int]:
        return r["sla_met"], r["sla_breached"]

    everything = await report(period="all")
    # Each filter partitions the facts: its parts add up to the unfiltered whole.
    tiers = [verdicts(await report(period="all", tier=t)) for t in ("1", "2", "3")]
    assert tuple(map(sum, zip(*tiers, strict=True))) == verdicts(everything)
    assert tiers[1][1] >= 1  # the seeded tier 2 breach is in tier 2
    teams = [verdicts(await report(period="all", team=t)) for t in ("sales", "marketing")]
    assert tuple(map(sum, zip(*teams, strict=True))) == verdicts(everything)
    tier_1 = await report(period="all", tier="1")
    assert {t["tier"] for t in tier_1["time_to_first_touch"]} <= {"1"}
    assert tier_1["scope"]["tier"] == "1"
    # A period before anything happened: no handoffs to rate, and a TAL nobody worked (red).
    empty = await report(start="2020-01-01T00:00:00Z", end="2020-02-01T00:00:00Z")
    assert verdicts(empty) == (0, 0)
    values = {r["name"]: r["value"] for r in empty["readings"]}
    assert values["handoff_success_rate"] is None
    assert values["joint_account_coverage"] == 0.0
    assert empty["health"] == "red"
    # The last 7 days before the clock (NOW) hold the seeded scenario.
    recent = await report(period="7d")
    assert recent["scope"]["start"] == _iso(NOW - timedelta(days=7))
    assert verdicts(recent)[0] >= 1


async def test_tal_workflow_publishes_finalized_tiers_through_the_outbox(api: Api) -> None:
    key = f"initech-{api.scenario.tag}.com"
    proposal = {
        "account_key": key,
        "suggested_tier": "2",
        "reason": "fits the ICP",
        "fit_score": 77,
    }
    assert (await api.post("ava.ae", "/v1/tal/proposals", proposal)).status_code == 403
    extra = await api.post("mia.marketing", "/v1/tal/proposals", {**proposal, "evil": 1})
    assert extra.status_code == 422
    assert (await api.post("mia.marketing", "/v1/tal/proposals", proposal)).status_code == 201
    change = {"decision": "change_tier", "tier": "1", "reason": "strategic"}
    assert (await api.post("mia.marketing", f"/v1/tal/{key}/validation", change)).status_code == 403
    assert (await api.post("sam.manager", f"/v1/tal/{key}/validation", change)).status_code == 200
    early = await api.post("sam.manager", f"/v1/tal/{key}/removal", {"reason": "no"})
    assert early.status_code == 409 and early.json()["error"] == "invalid_transition"
    for person, side in (("mia.marketing", "marketing"), ("sam.manager", "sales")):
        response = await api.post(person, f"/v1/tal/{key}/approvals", {"side": side})
        assert response.status_code == 200, response.text
    entry = response.json()
    assert (entry["status"], entry["tier"]) == ("finalized", "1")
    removed = await api.post("sam.manager", f"/v1/tal/{key}/removal", {"reason": "churned"})
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    # Every decision is kept: who, in which role, when, why.
    history = [
        (d["action"], d["actor_id"], d["role"], d["side"], d["reason"], d["at"])
        for d in removed.json()["history"]
    ]
    at = _iso(NOW)
    assert history == [
        ("propose", "mia.marketing", "marketing", None, "fits the ICP", at),
        ("change_tier", "sam.manager", "sales", None, "strategic", at),
        ("finalize", "mia.marketing", "marketing", "marketing", "", at),
        ("finalize", "sam.manager", "sales", "sales", "", at),
        ("remove", "sam.manager", "sales", None, "churned", at),
    ]
    async with api.engine.connect() as conn:
        query = sa.select(outbox.c.topic, outbox.c.headers, outbox.c.value)
        rows = (await conn.execute(query.where(outbox.c.key == key.encode()))).all()
    assert [(r.topic, r.headers["ce_type"]) for r in rows] == [
        ("tandem.tal", "tandem.tal.finalized"),
        ("tandem.tal", "tandem.tal.removed"),
    ]
    finalized = json.loads(rows[0].value)["data"]
    assert (finalized["tier"], sorted(finalized["decided_by"])) == (
        "1",
        ["mia.marketing", "sam.manager"],
    )


async def test_an_acknowledgement_is_published_like_a_slack_click(api: Api) -> None:
    s = api.scenario
    path = f"/v1/handoffs/{s.open_handoff}/acknowledgement"
    assert (await api.post("ben.ae", path, {})).status_code == 404  # not Ben's handoff
    for _ in range(2):  # a retry is the same acknowledgement
        response = await api.post("ava.ae", path, {})
        assert response.status_code == 202, response.text
    assert response.json() == {
        "handoff_id": s.open_handoff,
        "person_id": "ava.ae",
        "acknowledged_at": _iso(NOW),
    }
    async with api.engine.connect() as conn:
        query = sa.select(outbox.c.topic, outbox.c.event_id, outbox.c.value)
        rows = (await conn.execute(query.where(outbox.c.key == s.acme.encode()))).all()
    assert {(r.topic, r.event_id) for r in rows} == {("tandem.handoff-actions", rows[0].event_id)}
    event = json.loads(rows[0].value)
    assert event["type"] == "tandem.handoff.acknowledged"
    assert {k: event["data"][k] for k in ("handoff_id", "person_id", "via")} == {
        "handoff_id": s.open_handoff,
        "person_id": "ava.ae",
        "via": "api",
    }


async def test_a_proposal_carries_the_observed_intent_unless_marketing_gives_its_own(
    api: Api,
) -> None:
    s = api.scenario
    proposal = {"account_key": s.acme, "suggested_tier": "1", "reason": "surging on ABM"}
    entry = (await api.post("mia.marketing", "/v1/tal/proposals", proposal)).json()
    assert entry["intent"] == [
        {"provider": "bombora", "topic": "ABM", "score": 81.0, "surging": False}
    ]
    account = (await api.get("ava.ae", f"/v1/accounts/{s.acme}")).json()
    assert (account["tal_status"], account["tal_workflow_status"]) == ("finalized", "proposed")
    own = {"provider": "g2", "topic": "CRM", "score": 40, "surging": True}
    proposal = {**proposal, "account_key": s.globex, "intent": [own]}
    entry = (await api.post("mia.marketing", "/v1/tal/proposals", proposal)).json()
    assert entry["intent"] == [{**own, "score": 40.0}]


async def test_rate_limit_answers_429_with_retry_after(api: Api, infra: Infra) -> None:
    settings = gateway_settings(infra, rate_limit_burst=2, rate_limit_per_second=0.01)
    sessions = session_factory(api.engine)
    app = create_app(gateway=gateway_for(settings, sessions), runtime_getter=lambda: None)
    headers = {"X-API-Key": api.keys["lea.leader"]}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        statuses = [(await client.get("/v1/me", headers=headers)) for _ in range(3)]
        other = await client.get("/v1/me", headers={"X-API-Key": api.keys["sam.manager"]})
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert statuses[2].json()["error"] == "too_many_requests"
    assert other.status_code == 200  # the limit is per key: another key is unaffected
