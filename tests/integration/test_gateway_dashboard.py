"""The dashboard in headless Chromium (Debian's chromium package) shows the seeded scenario."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from conftest import Infra
from starlette.types import ASGIApp, Receive, Scope, Send
from test_gateway_support import (
    HUBSPOT_LEAD_URL,
    NOW,
    ROOT,
    SALESFORCE_ACCOUNT_URL,
    Scenario,
    Seeded,
    feed_listening,
    gateway_for,
    project,
    seeded_gateway,
    served_over_http,
)

from tandem_api_gateway.app import create_app
from tandem_shared import events as ev
from tandem_shared.envelope import Envelope
from tandem_shared.local.embedded import free_port

pytestmark = pytest.mark.integration

SCREENSHOT = ROOT / ".tandem" / "dashboard.png"


def chromium() -> str:
    """Return the Chromium binary, failing (never skipping) with how to get it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is missing: install Debian's package (apt-get install -y chromium)")
    return found


class Page(HTMLParser):
    """Collects the text of every element with an id, and the cells of each keyed table row."""

    ROW_KEYS = ("data-handoff", "data-alert", "data-metric", "data-touch", "data-segment")

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attrs_by_id: dict[str, dict[str, str | None]] = {}
        self.rows: dict[str, list[str]] = {}  # table id -> row keys (data-* of ROW_KEYS)
        self.cells: dict[str, dict[str, list[str]]] = {}  # table id -> row key -> cell texts
        self.accounts: dict[str, list[str]] = {}  # tier list id -> data-account values
        self.links: dict[str, dict[str, str | None]] = {}  # table id -> row key -> a cell's href
        self._stack: list[str | None] = []
        self._row: list[str] | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element_id = found.get("id")
        if element_id:
            self.attrs_by_id[element_id] = found
            self.text.setdefault(element_id, "")
        owner = next((i for i in reversed(self._stack) if i), None)
        if owner and tag == "tr":
            key = next((found[k] for k in self.ROW_KEYS if found.get(k)), None)
            if key:
                self.rows.setdefault(owner, []).append(key)
                self._row = self.cells.setdefault(owner, {}).setdefault(key, [])
        if tag == "td" and self._row is not None:
            self._cell = ""
        if owner and tag == "a" and self._row is not None:
            key = self.rows[owner][-1]
            self.links.setdefault(owner, {})[key] = found.get("href")
        if owner and tag == "li" and found.get("data-account"):
            self.accounts.setdefault(owner, []).append(found["data-account"] or "")
        self._stack.append(element_id)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        if tag == "tr":
            self._row = None
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        owner = next((i for i in reversed(self._stack) if i), None)
        if owner:
            self.text[owner] += data
        if self._cell is not None:
            self._cell += data


@dataclass
class Served:
    url: str
    key: str
    seeded: Seeded

    @property
    def scenario(self) -> Scenario:
        return self.seeded.scenario


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(infra: Infra) -> AsyncIterator[Served]:
    """The gateway app served over HTTP on the session database with a seeded scenario."""
    async with seeded_gateway(infra, "dash" + str(free_port()), rate_limit_burst=10_000) as seeded:
        gateway = gateway_for(seeded.settings, seeded.sessions)
        app = create_app(gateway=gateway, runtime_getter=lambda: None)
        async with served_over_http(app) as url:
            yield Served(f"{url}/", seeded.keys["lea.leader"], seeded)


async def _chromium(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=8000",
        "--window-size=1400,1800",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


def _number(value: float) -> str:
    """JavaScript's String() of a number: no trailing .0 on whole numbers."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _percent(value: float | None, unit: str) -> str:
    """The page's rendering of a metric value (dashboard.js `percent`)."""
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if unit == "ratio" else _number(value)


def _duration(seconds: float | None) -> str:
    """The page's rendering of a duration (dashboard.js `duration`, Math.round included)."""
    if seconds is None:
        return "n/a"
    hours, rest = divmod(math.floor(abs(seconds) + 0.5), 3600)
    minutes, secs = divmod(rest, 60)
    return ("-" if seconds < 0 else "") + (f"{hours}h " if hours else "") + f"{minutes}m {secs}s"


async def _report(s: Served, **filters: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{s.url}v1/metrics/alignment",
            params={"period": "all", **filters},
            headers={"Authorization": f"Bearer {s.key}"},
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _assert_page_shows(page: Page, report: dict[str, Any]) -> None:
    """Every metric on the page is the API's value for the same scope, with its health colour."""
    units = {d["name"]: d["unit"] for d in report["definitions"]}
    assert page.rows["metrics"] == [r["name"] for r in report["readings"]]
    for reading in report["readings"]:
        _, value, _, health = page.cells["metrics"][reading["name"]]
        assert value == _percent(reading["value"], units[reading["name"]]), reading["name"]
        assert health == reading["health"]
    health = page.attrs_by_id["health"]["data-health"]
    assert health == report["health"] and page.text["health"] == health
    touch = page.cells.get("first-touch", {})
    assert len(touch) == len(report["time_to_first_touch"])
    for t in report["time_to_first_touch"]:
        cells = touch[f"{t['tier']}:{t['signal'] or 'all'}"]
        median, p90 = _duration(t["median_seconds"]), _duration(t["p90_seconds"])
        assert cells[2:] == [str(t["touched"]), str(t["untouched"]), median, p90]
    for name in ("in_tal", "outside_tal"):
        p = report[f"pipeline_{name}"]
        shown = [str(p["open_deals"]), _number(p["open_amount"]), str(p["closed"]), str(p["won"])]
        assert page.cells["pipeline"][name][1:] == [*shown, _percent(p["win_rate"], "ratio")]


async def test_dashboard_shows_the_seeded_scenario(served: Served) -> None:
    s = served.scenario
    page = Page()
    page.feed(await _chromium("--dump-dom", f"{served.url}?key={served.key}"))

    assert page.text["status"].startswith("updated"), page.text["status"]
    assert page.attrs_by_id["live"]["data-state"] == "live"
    assert s.acme in page.accounts["tal-tier-1"]
    assert s.globex in page.accounts["tal-tier-2"]
    assert int(page.text["tal-count-1"]) >= 1
    assert s.open_handoff in page.rows["open-handoffs"]
    assert s.ben_handoff not in page.rows["open-handoffs"]
    assert s.ben_handoff in page.rows["breaches"]
    assert {s.ava_alert, s.ben_alert} <= set(page.rows["alerts"])
    # "Open in CRM": the rows with a record link to it.
    assert page.links["open-handoffs"][s.open_handoff] == HUBSPOT_LEAD_URL
    assert s.ben_handoff not in page.links.get("breaches", {})  # no record, no link
    assert page.links["alerts"][s.ava_alert] == HUBSPOT_LEAD_URL
    assert page.links["alerts"][s.ben_alert] == SALESFORCE_ACCOUNT_URL
    # The open handoff's SLA countdown: 50 minutes left at the gateway's clock, ticking down.
    countdown = page.cells["open-handoffs"][s.open_handoff][-1]
    assert re.fullmatch(r"(49m [0-5]?\d|50m 0)s", countdown), countdown

    report = await _report(served)
    _assert_page_shows(page, report)
    assert any(t["median_seconds"] for t in report["time_to_first_touch"])  # the seeded touch
    assert report["pipeline_in_tal"]["open_amount"] >= 50_000  # the seeded Acme deal

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    await _chromium(f"--screenshot={SCREENSHOT}", f"{served.url}?key={served.key}")
    assert SCREENSHOT.stat().st_size > 10_000


class HoldFirst:
    """ASGI wrapper holding the first request to one path until released.

    Headless Chromium stops its virtual clock while a fetch is pending, so holding the page's
    metrics request keeps the page open (and its feed connected) until the test has made its
    change; the DOM dump then shows what the page did with the live feed.
    """

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app, self.path = app, path
        self.arrived, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and not self.arrived.is_set():
            self.arrived.set()
            await self.release.wait()
        await self.app(scope, receive, send)


def _new_handoff(s: Scenario, handoff: str) -> list[Envelope]:
    at = NOW - timedelta(minutes=5)
    return [s.add_handoff(handoff, s.acme, "ava.ae", signal=ev.Signal.INTENT_SURGE, decided_at=at)]


async def test_dashboard_updates_from_the_live_feed(served: Served) -> None:
    seeded = served.seeded
    gateway = gateway_for(seeded.settings, seeded.sessions)
    gated = HoldFirst(
        create_app(gateway=gateway, runtime_getter=lambda: None), "/v1/metrics/alignment"
    )
    handoff = f"h-live-{served.scenario.tag}"
    async with feed_listening(seeded.settings, gateway.feed), served_over_http(gated) as url:
        browser = asyncio.create_task(_chromium("--dump-dom", f"{url}/?key={served.key}"))
        async with asyncio.timeout(60):
            await gated.arrived.wait()
            while gateway.feed.subscriber_count == 0:  # the page's /v1/stream is connected
                await asyncio.sleep(0.05)
        # A handoff committed after the page loaded: only the feed can bring it to the page.
        await project(seeded.sessions, _new_handoff(served.scenario, handoff))
        await asyncio.sleep(1)
        gated.release.set()
        page = Page()
        page.feed(await browser)
    assert handoff in page.rows["open-handoffs"]
    assert int(page.attrs_by_id["live"]["data-events"] or 0) >= 1


async def test_dashboard_metrics_follow_the_filters_in_the_address(served: Served) -> None:
    filters = {"period": "30d", "tier": "2", "team": "sales"}
    page = Page()
    page.feed(
        await _chromium("--dump-dom", f"{served.url}?{urlencode({'key': served.key, **filters})}")
    )
    scope = page.attrs_by_id["metric-scope"]
    assert (scope["data-tier"], scope["data-team"]) == ("2", "sales")
    report = await _report(served, **filters)
    assert {t["tier"] for t in report["time_to_first_touch"]} <= {"2"}
    _assert_page_shows(page, report)


async def test_dashboard_without_a_key_asks_for_one(served: Served) -> None:
    page = Page()
    page.feed(await _chromium("--dump-dom", served.url))
    assert "no API key" in page.text["status"]
