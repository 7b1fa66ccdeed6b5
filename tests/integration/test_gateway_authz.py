"""Authorization over real HTTP: every /v1 endpoint with every role, and what a rep may see.

The gateway is served by uvicorn on the session database, so the live feed (`/v1/stream`) is
read as a browser reads it, fed by PostgreSQL notifications of real projection commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import Infra
from fastapi import FastAPI
from test_gateway_support import (
    NOW,
    PEOPLE,
    Scenario,
    feed_listening,
    gateway_for,
    project,
    seeded_gateway,
    served_over_http,
)

from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain.authz import FINALIZE_SIDES, POLICY, Operation, Role, Side
from tandem_shared.envelope import Envelope

pytestmark = pytest.mark.integration

ADMIN = "lea.leader"


@dataclass
class Api:
    client: httpx.AsyncClient
    keys: dict[str, str]  # person id -> key
    scenario: Scenario
    app: FastAPI

    def headers(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[person]}"}

    async def call(
        self, person: str | None, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = self.headers(person) if person else {}
        return await self.client.request(method, path, headers=headers, json=body)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(infra: Infra) -> AsyncIterator[Api]:
    tag = "authz" + uuid.uuid4().hex[:8]
    async with seeded_gateway(infra, tag, rate_limit_burst=100_000) as seeded:
        gateway = gateway_for(seeded.settings, seeded.sessions)
        app = create_app(gateway=gateway, runtime_getter=lambda: None)
        async with (
            feed_listening(seeded.settings, gateway.feed),
            served_over_http(app) as url,
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            yield Api(client, seeded.keys, seeded.scenario, app)


async def _tal_entries(api: Api, label: str) -> dict[str, str]:
    """Three TAL entries the admin prepared for one test: proposed, accepted, finalized."""
    keys = {state: f"{state}-{label}-{api.scenario.tag}.com" for state in ("p", "a", "f")}
    for key in keys.values():
        proposal = {"account_key": key, "suggested_tier": "2", "reason": "ICP fit", "fit_score": 70}
        assert (await api.call(ADMIN, "POST", "/v1/tal/proposals", proposal)).status_code == 201
    for key in (keys["a"], keys["f"]):
        accept = {"decision": "accept", "reason": "worth it"}
        assert (
            await api.call(ADMIN, "POST", f"/v1/tal/{key}/validation", accept)
        ).status_code == 200
    approvals = f"/v1/tal/{keys['f']}/approvals"
    assert (await api.call(ADMIN, "POST", approvals, {"side": "marketing"})).status_code == 200
    # One person cannot approve both sides: the sales manager approves sales.
    assert (await api.call("sam.manager", "POST", approvals, {"side": "sales"})).status_code == 200
    return keys


def _calls(s: Scenario, tal: dict[str, str], role: Role) -> list[tuple[str, str, str, Any, Any]]:
    """(method, route, path, body, operation or None, success status) of every /v1 endpoint."""
    side = sorted(FINALIZE_SIDES[role])[0] if FINALIZE_SIDES[role] else Side.MARKETING
    proposal = {
        "account_key": f"new-{role.value}-{s.tag}.com",
        "suggested_tier": "3",
        "reason": "x",
    }
    return [
        ("GET", "/v1/me", "/v1/me", None, (None, 200)),
        ("GET", "/v1/accounts", "/v1/accounts", None, (Operation.READ_ACCOUNTS, 200)),
        (
            "GET",
            "/v1/accounts/{account_key}",
            f"/v1/accounts/{s.acme}",
            None,
            (Operation.READ_ACCOUNTS, 200),
        ),
        (
            "GET",
            "/v1/accounts/{account_key}/timeline",
            f"/v1/accounts/{s.acme}/timeline",
            None,
            (Operation.READ_ACCOUNTS, 200),
        ),
        ("GET", "/v1/handoffs", "/v1/handoffs", None, (Operation.READ_HANDOFFS, 200)),
        (
            "GET",
            "/v1/handoffs/{handoff_id}",
            f"/v1/handoffs/{s.ava_handoff}",
            None,
            (Operation.READ_HANDOFFS, 200),
        ),
        ("GET", "/v1/breaches", "/v1/breaches", None, (Operation.READ_HANDOFFS, 200)),
        (
            "POST",
            "/v1/handoffs/{handoff_id}/acknowledgement",
            f"/v1/handoffs/{s.ava_handoff}/acknowledgement",
            None,
            (Operation.ACKNOWLEDGE_HANDOFF, 202),
        ),
        (
            "POST",
            "/v1/handoffs/{handoff_id}/actions",
            f"/v1/handoffs/{s.ava_handoff}/actions",
            {"action": "acknowledge"},
            (Operation.ACT_ON_HANDOFF, 202),
        ),
        (
            "GET",
            "/v1/handoffs/{handoff_id}/actions/{action_id}",
            f"/v1/handoffs/{s.ava_handoff}/actions/{s.ava_action}",
            None,
            (Operation.READ_HANDOFFS, 200),
        ),
        (
            "GET",
            "/v1/people/{person_id}/availability",
            f"/v1/people/{PEOPLE[role]}/availability",
            None,
            (Operation.READ_AVAILABILITY, 200),
        ),
        (
            "PUT",
            "/v1/people/{person_id}/availability",
            f"/v1/people/{PEOPLE[role]}/availability",
            {"capacity": 5},
            (Operation.SET_AVAILABILITY, 202),
        ),
        ("GET", "/v1/alerts", "/v1/alerts", None, (Operation.READ_ALERTS, 200)),
        (
            "GET",
            "/v1/alerts/{alert_id}",
            f"/v1/alerts/{s.ava_alert}",
            None,
            (Operation.READ_ALERTS, 200),
        ),
        ("GET", "/v1/tal", "/v1/tal", None, (Operation.READ_TAL, 200)),
        ("GET", "/v1/tal/{account_key}", f"/v1/tal/{tal['p']}", None, (Operation.READ_TAL, 200)),
        ("POST", "/v1/tal/proposals", "/v1/tal/proposals", proposal, (Operation.PROPOSE_TAL, 201)),
        (
            "POST",
            "/v1/tal/{account_key}/validation",
            f"/v1/tal/{tal['p']}/validation",
            {"decision": "change_tier", "tier": "1", "reason": "strategic"},
            (Operation.VALIDATE_TAL, 200),
        ),
        (
            "POST",
            "/v1/tal/{account_key}/approvals",
            f"/v1/tal/{tal['a']}/approvals",
            {"side": side.value},
            (Operation.FINALIZE_TAL, 200),
        ),
        (
            "POST",
            "/v1/tal/{account_key}/removal",
            f"/v1/tal/{tal['f']}/removal",
            {"reason": "no longer a fit"},
            (Operation.REMOVE_FROM_TAL, 200),
        ),
        (
            "GET",
            "/v1/metrics/alignment",
            "/v1/metrics/alignment",
            None,
            (Operation.READ_METRICS, 200),
        ),
        ("GET", "/v1/stream", "/v1/stream", None, (Operation.READ_HANDOFFS, 200)),
    ]


def _v1_routes(app: FastAPI) -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1") for m in ops}


async def _status(api: Api, person: str | None, method: str, path: str, body: Any) -> int:
    if path != "/v1/stream":
        return (await api.call(person, method, path, body)).status_code
    headers = api.headers(person) if person else {}
    async with api.client.stream("GET", path, headers=headers) as response:
        if response.status_code == 200:
            first = await anext(response.aiter_lines())
            assert first == "event: ready"
        return response.status_code


async def test_the_matrix_covers_every_v1_endpoint(api: Api) -> None:
    listed = {
        (m, route) for m, route, *_ in _calls(api.scenario, {"p": "", "a": "", "f": ""}, Role.REP)
    }
    assert listed == _v1_routes(api.app)


@pytest.mark.parametrize("role", list(Role))
async def test_every_endpoint_answers_each_role_by_the_policy(api: Api, role: Role) -> None:
    tal = await _tal_entries(api, role.value)
    person = PEOPLE[role]
    for method, route, path, body, (operation, ok) in _calls(api.scenario, tal, role):
        expected = ok if operation is None or role in POLICY[operation] else 403
        status = await _status(api, person, method, path, body)
        assert status == expected, (role, method, route, status)


async def test_every_endpoint_refuses_a_request_without_a_key(api: Api) -> None:
    tal = {"p": "x.com", "a": "x.com", "f": "x.com"}
    for method, route, path, body, _ in _calls(api.scenario, tal, Role.REVOPS_ADMIN):
        assert await _status(api, None, method, path, body) == 401, route


async def test_every_request_body_refuses_unknown_fields(api: Api) -> None:
    tal = await _tal_entries(api, "unknown-fields")
    calls = _calls(api.scenario, tal, Role.REVOPS_ADMIN)
    posts = [c for c in calls if c[0] == "POST" and c[3] is not None]
    assert len(posts) == 5
    for method, route, path, body, _ in posts:
        response = await api.call(ADMIN, method, path, {**body, "is_admin": True})
        assert response.status_code == 422, route
        assert "is_admin" in response.text
    # Nothing was decided by the refused requests.
    entry = (await api.call(ADMIN, "GET", f"/v1/tal/{tal['p']}")).json()
    assert [d["action"] for d in entry["history"]] == ["propose"]


async def test_a_hidden_object_answers_exactly_like_a_missing_one(api: Api) -> None:
    s = api.scenario
    for method, path, hidden in (
        ("GET", "/v1/handoffs/{}", s.ben_handoff),
        ("POST", "/v1/handoffs/{}/acknowledgement", s.ben_handoff),
        ("GET", "/v1/alerts/{}", s.ben_alert),
    ):
        forbidden = await api.call("ava.ae", method, path.format(hidden))
        missing = await api.call("ava.ae", method, path.format(f"{hidden}-nope"))
        assert forbidden.status_code == missing.status_code == 404
        assert forbidden.json()["error"] == missing.json()["error"] == "not_found"
        assert forbidden.json()["detail"].replace(hidden, "?") == missing.json()["detail"].replace(
            f"{hidden}-nope", "?"
        )
    for path in (f"/v1/accounts/nope-{s.tag}.com", f"/v1/tal/nope-{s.tag}.com"):
        assert (await api.call(ADMIN, "GET", path)).status_code == 404


def _timeline_objects(items: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    handoffs = {i["data"]["handoff_id"] for i in items if i["kind"] in ("routing", "sla")}
    alerts = {i["entry_id"] for i in items if i["kind"] == "alert"}
    return handoffs, alerts


@pytest.mark.parametrize(
    ("person", "handoffs", "alerts"),
    [
        ("ava.ae", {"ava_handoff", "open_handoff"}, {"ava_alert"}),
        ("ben.ae", {"ben_handoff"}, {"ben_alert"}),
        ("sam.manager", {"ava_handoff", "open_handoff", "ben_handoff"}, {"ava_alert", "ben_alert"}),
        (
            "mia.marketing",
            {"ava_handoff", "open_handoff", "ben_handoff"},
            {"ava_alert", "ben_alert"},
        ),
    ],
)
async def test_account_timelines_show_a_rep_only_their_own_handoffs_and_alerts(
    api: Api, person: str, handoffs: set[str], alerts: set[str]
) -> None:
    s = api.scenario
    seen_handoffs: set[str] = set()
    seen_alerts: set[str] = set()
    kinds: set[str] = set()
    for account in (s.acme, s.globex):
        response = await api.call(person, "GET", f"/v1/accounts/{account}/timeline")
        items = response.json()["items"]
        kinds |= {i["kind"] for i in items}
        found_handoffs, found_alerts = _timeline_objects(items)
        seen_handoffs |= found_handoffs
        seen_alerts |= found_alerts
    assert seen_handoffs == {getattr(s, n) for n in handoffs}
    assert seen_alerts == {getattr(s, n) for n in alerts}
    # Account activity itself is shared by everyone who reads accounts.
    assert {"engagement", "sales_activity", "intent"} <= kinds


def _decided(s: Scenario, handoff: str, rep: str) -> list[Envelope]:
    # An account of its own: the other tests' timelines stay as seeded.
    at = NOW - timedelta(minutes=1)
    return [s.add_handoff(handoff, f"live-{s.tag}.com", rep, decided_at=at)]


async def _next_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind not in ("", "ready"):
            return kind, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_the_live_feed_shows_a_rep_only_their_own_handoffs(api: Api) -> None:
    s = api.scenario
    bens, avas = f"h-live-ben-{s.tag}", f"h-live-ava-{s.tag}"
    async with (
        api.client.stream("GET", "/v1/stream", headers=api.headers("ava.ae")) as ava,
        api.client.stream("GET", "/v1/stream", headers=api.headers("sam.manager")) as sam,
    ):
        ava_lines, sam_lines = ava.aiter_lines(), sam.aiter_lines()
        assert await anext(ava_lines) == "event: ready"
        assert await anext(sam_lines) == "event: ready"
        gateway = api.app.state.gateway
        # Ben's handoff first, then Ava's: Ava's first event must be her own.
        await project(gateway.sessions, _decided(s, bens, "ben.ae"))
        await project(gateway.sessions, _decided(s, avas, "ava.ae"))
        live = f"live-{s.tag}.com"
        assert await _next_event(ava_lines) == ("handoff", {"id": avas, "account_key": live})
        assert await _next_event(sam_lines) == ("handoff", {"id": bens, "account_key": live})
        assert await _next_event(sam_lines) == ("handoff", {"id": avas, "account_key": live})
