"""`tandem-local`: run the whole system on this machine (embedded broker and database).

    tandem-local up      start broker, database, topics, migrations and the five services
    tandem-local down    stop what `up` started (also when it was killed)
    tandem-local topics  create the topics on KAFKA_BOOTSTRAP_SERVERS

External infrastructure is used instead when KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tandem_shared.kafka import ensure_topics
from tandem_shared.local.embedded import (
    Broker,
    Postgres,
    ensure_database,
    start_broker,
    start_postgres,
    stop_postgres,
)
from tandem_shared.settings import KafkaSettings, async_url

STATE_DIR = Path(".tandem")
RUN_FILE = STATE_DIR / "run.json"
LOCAL_BROKER_PORT = 19092


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int


SERVICE_OFFSETS = {"api-gateway": 0, "ingest": 1, "router": 2, "sla-monitor": 3, "alerts": 4}


def _services() -> tuple[ServiceSpec, ...]:
    # TANDEM_LOCAL_HTTP_BASE moves every port, so a second stack (a test) can run beside yours.
    base = int(os.environ.get("TANDEM_LOCAL_HTTP_BASE", "8000"))
    return tuple(ServiceSpec(name, base + offset) for name, offset in SERVICE_OFFSETS.items())


def _broker_port() -> int:
    return int(os.environ.get("TANDEM_LOCAL_BROKER_PORT", str(LOCAL_BROKER_PORT)))


def _start_timeout() -> float:
    # A loaded laptop can need longer than the 30 s a quiet one takes; the banner says how long.
    return float(os.environ.get("TANDEM_LOCAL_START_TIMEOUT", "90"))


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / f"tandem-{name}")


def _say(message: str) -> None:
    print(f"tandem | {message}", flush=True)  # noqa: T201 - this is a terminal program


def _base_env(bootstrap: str, database_url: str, *, embedded_broker: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TANDEM_ENV": env.get("TANDEM_ENV", "dev"),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "TANDEM_CONFIG_DIR": env.get(
                "TANDEM_CONFIG_DIR", str(Path("config/example").resolve())
            ),
            "TANDEM_TELEMETRY__JSON_LOGS": env.get("TANDEM_TELEMETRY__JSON_LOGS", "false"),
            "TANDEM_DATA_DIR": str(STATE_DIR.resolve()),
        }
    )
    if embedded_broker:
        # Tansu rebalances only after a departed member's session expires: keep it short.
        env.setdefault("TANDEM_KAFKA__SESSION_TIMEOUT_MS", "3000")
        env.setdefault("TANDEM_KAFKA__HEARTBEAT_INTERVAL_MS", "300")
        env.setdefault("TANDEM_KAFKA__REBALANCE_TIMEOUT_MS", "1000")
    return env


async def _pump(name: str, stream: asyncio.StreamReader, log_file: Path) -> None:
    with log_file.open("ab") as fh:
        while line := await stream.readline():
            fh.write(line)
            fh.flush()
            sys.stdout.write(f"{name:>11} | {line.decode(errors='replace')}")
            sys.stdout.flush()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def _up() -> int:
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / "logs").mkdir(exist_ok=True)
    broker: Broker | None = None
    pg: Postgres | None = None
    procs: dict[str, asyncio.subprocess.Process] = {}
    pumps: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = start_broker(port=_broker_port(), log_path=STATE_DIR / "logs/broker.log")
            bootstrap = broker.bootstrap_servers
            _say(f"embedded broker (Tansu, in memory) on {bootstrap}")
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            database_url = async_url(database_url)
        else:
            pg = start_postgres((STATE_DIR / "pgdata").resolve())
            await ensure_database(pg)
            database_url = pg.url()
            _say(f"embedded PostgreSQL, data in {STATE_DIR / 'pgdata'}")
        created = await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
        _say(f"topics ready ({len(created)} created)")
        env = _base_env(bootstrap, database_url, embedded_broker=broker is not None)
        services = _services()
        # Each service migrates its own schema under its own advisory lock: they can run at once.
        migrations = [
            await asyncio.create_subprocess_exec(_script(spec.name), "migrate", env=env)
            for spec in services
        ]
        codes = await asyncio.gather(*(m.wait() for m in migrations))
        if failed := [spec.name for spec, code in zip(services, codes, strict=True) if code]:
            _say(f"migrations failed: {', '.join(failed)}")
            return 1
        _say("migrations applied")
        launched = time.monotonic()
        for spec in services:
            proc = await asyncio.create_subprocess_exec(
                _script(spec.name),
                "serve",
                env={**env, "TANDEM_HTTP__PORT": str(spec.port)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            procs[spec.name] = proc
            assert proc.stdout is not None
            pumps.append(
                asyncio.create_task(
                    _pump(spec.name, proc.stdout, STATE_DIR / "logs" / f"{spec.name}.log")
                )
            )
        _write_run_file(broker, pg, procs)
        timeout = _start_timeout()
        deadline = launched + timeout
        pending = {s.name: s.port for s in services}
        while pending and time.monotonic() < deadline and not stop.is_set():
            for name, port in list(pending.items()):
                if await asyncio.to_thread(_healthy, port):
                    del pending[name]
            await asyncio.sleep(0.3)
        if pending:
            _say(f"not healthy after {timeout:.0f} s: {', '.join(pending)}")
            return 1
        _print_welcome(services, seconds=time.monotonic() - launched)
        exited = [asyncio.create_task(p.wait()) for p in procs.values()]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*exited, stopper], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            _say("a service exited; stopping everything")
        return 0
    finally:
        _say("stopping")
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                _say(f"{name} did not stop in 15 s; killing it")
                proc.kill()
                await proc.wait()
        for pump in pumps:
            pump.cancel()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        RUN_FILE.unlink(missing_ok=True)
        _say("stopped")


def _write_run_file(
    broker: Broker | None, pg: Postgres | None, procs: dict[str, asyncio.subprocess.Process]
) -> None:
    RUN_FILE.write_text(
        json.dumps(
            {
                "up": os.getpid(),
                "broker": broker.process.pid if broker else None,
                "pgdata": str(pg.server.pgdata) if pg else None,
                "services": {name: p.pid for name, p in procs.items()},
            }
        )
    )


def _print_welcome(services: tuple[ServiceSpec, ...], *, seconds: float) -> None:
    port = {s.name: s.port for s in services}
    _say(f"all five services are healthy ({seconds:.1f} s after launch)")
    _say(
        f"  ingest webhooks   http://127.0.0.1:{port['ingest']}/v1/webhooks/{{source}} (see /docs)"
    )
    _say(
        f"  api-gateway       http://127.0.0.1:{port['api-gateway']}/v1   dashboard: "
        f"http://127.0.0.1:{port['api-gateway']}/"
    )
    _say(
        f"  router / sla-monitor / alerts health: :{port['router']} :{port['sla-monitor']} "
        f":{port['alerts']} /healthz"
    )
    _say("  alerts without Slack/SMTP credentials go to this log and to GET /v1/alerts")
    _say("  dev API keys for the gateway: .venv/bin/tandem-api-gateway keys")
    _say("  try it: make demo   (posts a signed meeting request for acme.com)")
    _say("Ctrl-C or `make down` stops everything.")


def _down() -> int:
    if not RUN_FILE.exists():
        _say("nothing is running")
        return 0
    run = json.loads(RUN_FILE.read_text())
    pids = [run["up"], *run["services"].values(), run.get("broker")]
    for pid in filter(None, pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in filter(None, pids)):
        time.sleep(0.2)
    for pid in filter(None, pids):
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if run.get("pgdata"):
        stop_postgres(Path(run["pgdata"]))
    RUN_FILE.unlink(missing_ok=True)
    _say("stopped")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of a dead parent still answers kill(0): read its state.
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    return True


def main() -> None:
    """Entry point of `tandem-local`."""
    parser = argparse.ArgumentParser(
        prog="tandem-local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "topics"])
    args = parser.parse_args()
    if args.command == "up":
        sys.exit(asyncio.run(_up()))
    if args.command == "down":
        sys.exit(_down())
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{_broker_port()}")
    created = asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=bootstrap)))
    _say(f"created {len(created)} topics: {', '.join(created) or '-'}")
