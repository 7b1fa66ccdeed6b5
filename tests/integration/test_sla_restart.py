"""Deadlines live in PostgreSQL: a SIGKILLed SLA monitor, restarted, fires what fell due once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import Infra
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from test_sla_support import Collector, decision, published_everything, write_config

from kafka_tools import produce_envelopes, start_group_at_end
from tandem_shared import topics
from tandem_shared.db import migrate
from tandem_shared.envelope import utcnow
from tandem_shared.events import EventType
from tandem_shared.local.embedded import free_port
from tandem_shared.settings import DatabaseSettings
from tandem_sla_monitor.main import CONSUMED_TOPICS, MIGRATIONS, SCHEMA

pytestmark = pytest.mark.integration

SERVICE = Path(sys.executable).parent / "tandem-sla-monitor"
NO_ESCALATION_SOON = """\
  - notify: manager
    after_breach_minutes: 600
"""
WARNING_SHARE = 0.95  # 57 of the 60 seconds allowed


async def fresh_database(url: str) -> str:
    """Create a database of its own next to the session's, so no other clock shares it."""
    parsed = make_url(url)
    name = f"tandem_sla_restart_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(False)


class ServiceProcess:
    """`tandem-sla-monitor serve` as a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._env = env
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(SERVICE), "serve"], env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        return time.time()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def wait_healthy(self, port: int) -> float:
        """Wait until the HTTP server answers; return when (epoch seconds)."""
        async with httpx.AsyncClient() as client, asyncio.timeout(20):
            while True:
                assert self.proc is not None and self.proc.poll() is None, self._log.read_text()
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        return time.time()
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.terminate()


@pytest.fixture
async def collector(infra: Infra) -> AsyncIterator[Collector]:
    events = Collector(infra.bootstrap_servers, [topics.SLA, topics.ALERT_REQUESTS])
    await events.start()
    yield events
    await events.stop()


async def test_sigkill_then_restart_fires_each_due_deadline_once_and_promptly(
    infra: Infra,
    tmp_path: Path,
    unique: str,
    collector: Collector,
    processes: list[ServiceProcess],
    record_property: Callable[[str, object], None],
) -> None:
    database_url = await fresh_database(infra.database_url)
    await migrate(
        settings=DatabaseSettings(url=database_url), schema=SCHEMA, script_location=MIGRATIONS
    )
    group = f"sla-restart-{unique}"
    await start_group_at_end(infra.bootstrap_servers, group, list(CONSUMED_TOPICS))
    config_dir = write_config(tmp_path, warning_share=WARNING_SHARE, escalation=NO_ESCALATION_SOON)
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
        "DATABASE_URL": database_url,
        "TANDEM_ENV": "test",
        "TANDEM_CONFIG_DIR": str(config_dir),
        "TANDEM_HTTP__PORT": str(port),
        "TANDEM_KAFKA__SESSION_TIMEOUT_MS": "3000",
        "TANDEM_KAFKA__HEARTBEAT_INTERVAL_MS": "300",
        "TANDEM_KAFKA__REBALANCE_TIMEOUT_MS": "1000",
        "TANDEM_SLA__CONSUMER_GROUP": group,
    }
    first, second = (
        ServiceProcess(env, tmp_path / "first.log"),
        ServiceProcess(env, tmp_path / "second.log"),
    )
    processes += [first, second]
    first.start()
    await first.wait_healthy(port)

    # Deadlines 5, 6 and 7 s from now, warnings 3 s before each: all fall while it is down.
    now = utcnow()
    handoffs = {f"h-{unique}-{n}": now - timedelta(seconds=60 - 5 - n) for n in range(3)}
    await produce_envelopes(
        infra.bootstrap_servers,
        topics.ROUTING,
        [decision(h, decided_at=at, account_key=f"{h}.com") for h, at in handoffs.items()],
    )
    deadlines, versions = {}, {}
    for handoff in handoffs:
        [started] = await collector.wait_for(handoff, EventType.SLA_STARTED)
        deadlines[handoff] = datetime.fromisoformat(started.data["deadline"])
        versions[handoff] = started.data["policy_version"]
    first.kill()
    killed_at = time.time()
    # The policy changes while it is down: running clocks keep the terms they started with.
    write_config(config_dir, warning_share=WARNING_SHARE, escalation=NO_ESCALATION_SOON, minutes=30)

    # Let every deadline pass while nothing runs.
    await asyncio.sleep(max(0.0, max(deadlines.values()).timestamp() - time.time()) + 0.5)
    restarted_at = second.start()
    back_at = await second.wait_healthy(port)

    lateness = {}
    for handoff, deadline in deadlines.items():
        [breached] = await collector.wait_for(handoff, EventType.SLA_BREACHED)
        await collector.wait_for(handoff, EventType.SLA_WARNING)
        assert breached.data["policy_version"] == versions[handoff]
        assert datetime.fromisoformat(breached.data["deadline"]) == deadline
        fired_at = breached.time.timestamp()
        assert killed_at < deadline.timestamp() < restarted_at < fired_at
        lateness[handoff] = fired_at - max(deadline.timestamp(), back_at)
    alerts = {
        handoff: [e.data["kind"] for e in collector.of(handoff, EventType.ALERT_REQUESTED)]
        for handoff in handoffs
    }
    record_property("restart_to_healthy_seconds", round(back_at - restarted_at, 2))
    record_property("breach_after_healthy_seconds", [round(v, 2) for v in lateness.values()])
    # Late by at most about a second once back (the first tick runs as the process starts).
    assert max(lateness.values()) < 2.0
    assert all(sorted(kinds) == ["sla_breach", "sla_warning"] for kinds in alerts.values()), alerts
    # Every warning and breach written is on the topic and read: each went out once.
    engine = create_async_engine(database_url)
    try:
        await published_everything(engine, collector)
    finally:
        await engine.dispose()
    for handoff in handoffs:
        assert len(collector.of(handoff, EventType.SLA_BREACHED)) == 1
        assert len(collector.of(handoff, EventType.SLA_WARNING)) == 1
