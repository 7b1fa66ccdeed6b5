"""The stack `make bench-pipeline` measures: infrastructure, a bench config, the five services as
processes, the Slack sink, and the probes that read each service's progress.

Everything listens on 127.0.0.1; `running_stack` stops every process it started on the way out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.slack_sink import ACCOUNT_NAME
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.local.embedded import free_port

BIN = Path(sys.executable).parent
SERVICES = ("ingest", "router", "sla-monitor", "alerts", "api-gateway")
SLACK_TOKEN = "xoxb-tandem-bench"  # noqa: S105 - the local Slack's throwaway token
SOURCE_SECRET = "whsec_YmVuY2gtcGlwZWxpbmUtc2VjcmV0LTAwMDAx"  # noqa: S105 - dev-only, local
BOMBORA_TOKEN = "bombora-bench-token"  # noqa: S105 - dev-only, local
AES = 20  # bench AEs the accounts are spread over (Slack DMs, calendars)
ROOT = Path(__file__).resolve().parents[1]


def account_key(number: int) -> str:
    return f"benchco{number:07d}.com"


# ---- infrastructure and config --------------------------------------------------------------


def write_config(tmp: Path) -> Path:
    """The example config plus bench AEs reachable at any hour, a fast bench source, Bombora
    without a rate limit, and day-long SLAs (no warnings or breaches flood Slack mid-run)."""
    config = tmp / "config"
    shutil.copytree(ROOT / "config/example", config)
    people = yaml.safe_load((config / "people.yaml").read_text())
    always = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}
    for person in people["people"]:
        person.get("preferences", {}).pop("quiet_hours", None)
        person["working_hours"] = always
    people["people"] += [
        {
            "id": f"bench.ae{j:02d}",
            "name": f"Bench AE {j:02d}",
            "email": f"bench.ae{j:02d}@tandem.example",
            "role": "ae",
            "team": "sales",
            "slack_user_id": f"U0BENCH{j:03d}",
            "manager_id": "sam.manager",
            "timezone": "UTC",
            "territories": ["na-east"],
            "capacity": 1_000_000,
            "working_hours": always,
            "preferences": {"channels": ["slack"]},
        }
        for j in range(AES)
    ]
    (config / "people.yaml").write_text(yaml.safe_dump(people))
    sla = yaml.safe_load((config / "sla.yaml").read_text())
    sla["targets"] = {signal: {1: 1440, 2: 2880, 3: 4320} for signal in sla["targets"]}
    (config / "sla.yaml").write_text(yaml.safe_dump(sla))
    unlimited = {"per_second": 1_000_000, "burst": 1_000_000}
    sources = [
        {
            "name": "bench",
            "kind": "generic",
            "dev_secrets": [SOURCE_SECRET],
            "rate_limit": unlimited,
        },
        {
            "name": "bombora",
            "kind": "bombora",
            "dev_secrets": [BOMBORA_TOKEN],
            "rate_limit": unlimited,
            "config": {"surge_threshold": 60},
        },
    ]
    (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
    return config


def bench_accounts(count: int) -> list[dict[str, Any]]:
    """Tier 1 TAL accounts, their AEs spread over the bench AEs, Mia their marketer."""
    return [
        {
            "account_key": account_key(n),
            "name": ACCOUNT_NAME.format(n),
            "tier": "1",
            "ae_id": f"bench.ae{n % AES:02d}",
            "marketer_id": "mia.marketing",
            "territory": "na-east",
        }
        for n in range(count)
    ]


async def seed_accounts(database_url: str, count: int) -> float:
    """Put `count` bench accounts in the router's table through its own seed code; return seconds.

    Not through accounts.yaml: the router seeds that file in one INSERT, and PostgreSQL's
    protocol caps a statement at 32,767 arguments (about 6,500 accounts); here it goes in chunks.
    """
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from tandem_router.adapters import repository
    from tandem_router.domain.model import seed_states

    started = time.perf_counter()
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": "router"}}
    )
    sessions = async_sessionmaker(engine)
    try:
        states = seed_states({"accounts": bench_accounts(count)})
        for start in range(0, len(states), 2000):
            async with sessions.begin() as session:
                await repository.seed_accounts(session, states[start : start + 2000])
    finally:
        await engine.dispose()
    return time.perf_counter() - started


# ---- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its live children so far (Linux /proc)."""
        return sum(_cpu(pid) for pid in _tree(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _tree(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        try:
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text()
        except OSError:
            children = ""
        pids += [int(c) for c in children.split()]
        index += 1
    return pids


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False


async def wait_healthy(proc: Proc, path: str = "/healthz", within: float = 90) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log.read_text()[-3000:]}")
        if await asyncio.to_thread(_healthy, proc.url + path):
            return
        await asyncio.sleep(0.3)
    raise TimeoutError(
        f"{proc.name} not healthy in {within:.0f} s:\n{proc.log.read_text()[-3000:]}"
    )


def _spawn(name: str, args: list[str], env: dict[str, str], tmp: Path, port: int) -> Proc:
    log = tmp / f"{name}.log"
    process = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # noqa: S603
    return Proc(name, port, process, log)


@dataclass
class Stack:
    bootstrap: str
    database_url: str
    env: dict[str, str]
    slack: Proc
    slack_control: str
    services: dict[str, Proc] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return listen_dsn(self.database_url)


def service_env(bootstrap: str, database_url: str, config: Path, slack_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        {
            "TANDEM_ENV": "dev",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "TANDEM_CONFIG_DIR": str(config),
            "TANDEM_TELEMETRY__LOG_LEVEL": "WARNING",
            # Tansu rebalances only after a departed member's session expires: keep it short.
            "TANDEM_KAFKA__SESSION_TIMEOUT_MS": "3000",
            "TANDEM_KAFKA__HEARTBEAT_INTERVAL_MS": "300",
            "TANDEM_KAFKA__REBALANCE_TIMEOUT_MS": "1000",
            "TANDEM_SLACK__BOT_TOKEN": SLACK_TOKEN,
            "TANDEM_SLACK__SIGNING_SECRET": "bench-signing-secret",
            "TANDEM_SLACK__BASE_URL": f"http://127.0.0.1:{slack_port}/api/",
            # Slack's own limit (about 1 message/s per channel) is what pacing enforces: lifted
            # here, so the bench measures Tandem and not a rate Slack would impose.
            "TANDEM_ALERTS__PACING_RATE_PER_SECOND": "1000000",
            "TANDEM_ALERTS__PACING_BURST": "1000000",
        }
    )
    return env


@asynccontextmanager
async def running_stack(
    tmp: Path, bootstrap: str, database_url: str, accounts: int
) -> AsyncIterator[Stack]:
    """Migrate, seed, start the Slack sink and the five services; stop them all on the way out."""
    config = write_config(tmp)
    slack_port, control_port = free_port(), free_port()
    env = service_env(bootstrap, database_url, config, slack_port)
    slack = _spawn(
        "slack",
        [
            sys.executable,
            "-m",
            "benchmarks.slack_sink",
            "--port",
            str(slack_port),
            "--control-port",
            str(control_port),
            "--token",
            SLACK_TOKEN,
        ],
        {**os.environ, "PYTHONPATH": str(ROOT)},
        tmp,
        control_port,
    )
    stack = Stack(bootstrap, database_url, env, slack, f"http://127.0.0.1:{control_port}")
    try:
        migrations = [
            await asyncio.create_subprocess_exec(
                str(BIN / f"tandem-{name}"),
                "migrate",
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            for name in SERVICES
        ]
        for name, migration in zip(SERVICES, migrations, strict=True):
            _, err = await asyncio.wait_for(migration.communicate(), timeout=180)
            if migration.returncode:
                raise RuntimeError(f"{name} migrate failed:\n{err.decode()[-3000:]}")
        seconds = await seed_accounts(database_url, accounts)
        print(f"seeded {accounts} bench accounts in {seconds:.1f} s", flush=True)  # noqa: T201
        for name in SERVICES:
            port = free_port()
            stack.services[name] = _spawn(
                name,
                [str(BIN / f"tandem-{name}"), "serve"],
                {**env, "TANDEM_HTTP__PORT": str(port)},
                tmp,
                port,
            )
        await wait_healthy(slack, "/")
        for proc in stack.services.values():
            await wait_healthy(proc)
        yield stack
    finally:
        for proc in reversed([slack, *stack.services.values()]):
            await asyncio.to_thread(proc.stop)
