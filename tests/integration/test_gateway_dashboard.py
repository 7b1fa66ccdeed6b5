"""The dashboard in headless Chromium (Debian's chromium package) shows the seeded scenario."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import pytest
import pytest_asyncio
import uvicorn
from conftest import Infra
from test_gateway_support import (
    ROOT,
    Scenario,
    build_scenario,
    gateway_for,
    gateway_settings,
    issue_key,
    migrate_gateway,
    project,
)

from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain.authz import Role
from tandem_shared.db import create_engine, session_factory
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
    """Collects the text of every element that has an id or data-* attribute of interest."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attrs_by_id: dict[str, dict[str, str | None]] = {}
        self.rows: dict[str, list[str]] = {}  # table id -> data-handoff / data-alert values
        self.accounts: dict[str, list[str]] = {}  # tier list id -> data-account values
        self._stack: list[str | None] = []
        self._current_id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element_id = found.get("id")
        if element_id:
            self.attrs_by_id[element_id] = found
            self.text.setdefault(element_id, "")
        owner = next((i for i in reversed(self._stack) if i), None)
        if owner and tag == "tr":
            value = found.get("data-handoff") or found.get("data-alert")
            if value:
                self.rows.setdefault(owner, []).append(value)
        if owner and tag == "li" and found.get("data-account"):
            self.accounts.setdefault(owner, []).append(found["data-account"] or "")
        self._stack.append(element_id)

    def handle_endtag(self, tag: str) -> None:
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        owner = next((i for i in reversed(self._stack) if i), None)
        if owner:
            self.text[owner] += data


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(infra: Infra) -> AsyncIterator[tuple[str, str, Scenario]]:
    """The gateway app served over HTTP on the session database with a seeded scenario."""
    await migrate_gateway(infra)
    settings = gateway_settings(infra, rate_limit_burst=10_000)
    engine = create_engine(settings.database, schema="api_gateway")
    sessions = session_factory(engine)
    scenario = build_scenario("dash" + str(free_port()))
    await project(sessions, scenario.all())
    key = await issue_key(sessions, settings, Role.REVOPS_ADMIN, "lea.leader")
    app = create_app(gateway=gateway_for(settings, sessions), runtime_getter=lambda: None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/", key, scenario
    finally:
        server.should_exit = True
        await task
        await engine.dispose()


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


async def test_dashboard_shows_the_seeded_scenario(served: tuple[str, str, Scenario]) -> None:
    url, key, s = served
    page = Page()
    page.feed(await _chromium("--dump-dom", f"{url}?key={key}"))

    assert page.attrs_by_id["status"] is not None
    assert page.text["status"].startswith("updated"), page.text["status"]
    assert s.acme in page.accounts["tal-tier-1"]
    assert s.globex in page.accounts["tal-tier-2"]
    assert int(page.text["tal-count-1"]) >= 1
    assert s.open_handoff in page.rows["open-handoffs"]
    assert s.ben_handoff not in page.rows["open-handoffs"]
    assert s.ben_handoff in page.rows["breaches"]
    assert {s.ava_alert, s.ben_alert} <= set(page.rows["alerts"])
    health = page.attrs_by_id["health"]["data-health"]
    assert health in ("green", "yellow", "red")
    assert page.text["health"] == health

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    await _chromium(f"--screenshot={SCREENSHOT}", f"{url}?key={key}")
    assert SCREENSHOT.stat().st_size > 10_000


async def test_dashboard_without_a_key_asks_for_one(served: tuple[str, str, Scenario]) -> None:
    url, _, _ = served
    page = Page()
    page.feed(await _chromium("--dump-dom", url))
    assert "no API key" in page.text["status"]
