"""`make bench-ingest`: signed HubSpot batches against one ingest worker, beside a bare endpoint.

Starts the embedded broker and PostgreSQL (or uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), runs
`tandem-ingest serve` (one uvicorn worker, outbox relay included) and a bare uvicorn app that only
parses the JSON and answers 202, then sends the same signed batches to both at each concurrency
level from an aiohttp client on 127.0.0.1, and prints requests/s, p50/p99 and the ratio.

    python -m benchmarks.ingest [--requests 2000] [--levels 1,8,32,64] [--batch 10]
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import yaml

from tandem_shared.bootstrap import listen_dsn
from tandem_shared.kafka import ensure_topics
from tandem_shared.local.embedded import ensure_database, free_port, start_broker, start_postgres
from tandem_shared.settings import KafkaSettings, async_url

SECRET = "bench-hubspot-client-secret"  # noqa: S105 - a throwaway benchmark secret
BIN = Path(sys.executable).parent


# ---- the bare endpoint: parse the JSON, answer 202 ----------------------------------------


async def bare_app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    """ASGI app that reads the body, parses it as JSON and answers 202."""
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":  # the health check
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"accepted":true}'})


def serve_bare(port: int) -> None:
    """Run the bare endpoint (one uvicorn worker, like ingest)."""
    import uvicorn

    # The same event loop and HTTP parser as ingest: the ratio then measures ingest's own work.
    uvicorn.run(
        bare_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


# ---- infrastructure and servers ------------------------------------------------------------


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy:\n{log.read_text()[-3000:]}")


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path, health: str) -> Iterator[int]:
    proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_healthy(health, proc, log)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def infrastructure(tmp: Path) -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, database URL): external ones from the env, else embedded."""
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = start_broker(log_path=tmp / "broker.log")
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap_servers
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            database_url = async_url(database_url)
        else:
            pg = start_postgres(tmp / "pgdata", keep=False)
            stack.callback(pg.stop)
            asyncio.run(ensure_database(pg))
            database_url = pg.url()
        asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=bootstrap)))
        yield bootstrap, database_url


def _ingest_env(tmp: Path, bootstrap: str, database_url: str, port: int) -> dict[str, str]:
    config = tmp / "config"
    config.mkdir()
    sources = {
        "sources": [
            {
                "name": "hubspot",
                "kind": "hubspot",
                "dev_secrets": [SECRET],
                "rate_limit": {"per_second": 1_000_000, "burst": 1_000_000},
            }
        ]
    }
    (config / "sources.yaml").write_text(yaml.safe_dump(sources))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        {
            "TANDEM_ENV": "dev",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "TANDEM_CONFIG_DIR": str(config),
            "TANDEM_HTTP__PORT": str(port),
            "TANDEM_TELEMETRY__LOG_LEVEL": "WARNING",
            "TANDEM_DATABASE__POOL_SIZE": "20",
        }
    )
    return env


# ---- load ----------------------------------------------------------------------------------


def hubspot_batch(size: int) -> bytes:
    """A batch of unique contact property changes, as HubSpot sends them."""
    occurred = int(time.time() * 1000)
    return orjson.dumps(
        [
            {
                "objectId": uuid.uuid4().int % 10**12,
                "propertyName": "lifecyclestage",
                "propertyValue": "marketingqualifiedlead",
                "changeSource": "CRM_UI",
                "eventId": uuid.uuid4().int % 10**9,
                "subscriptionId": 4242,
                "portalId": 62515,
                "appId": 1160452,
                "occurredAt": occurred,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
            }
            for _ in range(size)
        ]
    )


def signed_request(url: str, batch: int) -> tuple[bytes, dict[str, str]]:
    """Return a body and its HubSpot v3 headers."""
    body = hubspot_batch(batch)
    timestamp = str(int(time.time() * 1000))
    message = f"POST{url}".encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    return body, {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signature.decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    requests: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu: float = 0.0  # the server's CPU seconds over the run
    load: float = 0.0  # the machine's 1-minute load average at the end of the run

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu / self.requests * 1000

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def load(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, *, pid: int
) -> Figures:
    """Send every request with `concurrency` in flight; measure latencies and the server's CPU."""
    latencies: list[float] = []
    failures = 0
    pending = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            for body, headers in pending:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status >= 300:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        started, cpu = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    return Figures(len(requests), elapsed, latencies, failures, cpu, os.getloadavg()[0])


async def drained_after(dsn: str, started: float) -> float:
    """Wait until ingest's outbox is empty; return the seconds since `started`."""
    connection = await asyncpg.connect(dsn)
    try:
        while await connection.fetchval(_PENDING):  # noqa: ASYNC110 - the database has no event
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
    return time.perf_counter() - started


_PENDING = "SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL"


def _row(name: str, level: int, figures: Figures, batch: int, on_kafka: float | None) -> str:
    published = f"{figures.requests * batch / on_kafka:>10.0f}" if on_kafka else f"{'-':>10}"
    return (
        f"{name:<7}{level:>5}{figures.rate:>10.0f}{figures.rate * batch:>10.0f}{published}"
        f"{figures.percentile(0.5):>9.1f}{figures.percentile(0.99):>9.1f}"
        f"{figures.cpu_ms_per_request:>8.2f}{figures.load:>6.1f}{figures.failures:>6}"
    )


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    dsn: str | None = None  # where its outbox is, to time the events' way onto Kafka


async def run_levels(ingest: Server, bare: Server, args: argparse.Namespace) -> None:
    """Warm both servers up, then measure each level on both, side by side."""
    # Warm up at the highest level: the webhook pool opens its connections on demand, and a
    # run should measure the steady state, not the first requests that open them.
    for server in (ingest, bare):
        warm_up = [signed_request(ingest.url, args.batch) for _ in range(500)]
        await load(server.url, warm_up, max(args.levels), pid=server.pid)
    print(f"{args.requests} signed HubSpot batches of {args.batch} events per level, 1 worker each")
    print(f"(load average {os.getloadavg()[0]:.1f}: other work on this machine skews req/s and")
    print(" latencies; the server's CPU ms per request, outbox relay included, far less;")
    print(" load is the 1-minute load average after each run; on kafka: events/s from the")
    print(" first request until the relay had every event acknowledged by the broker)")
    columns = (
        "conc",
        "req/s",
        "events/s",
        "on kafka",
        "p50 ms",
        "p99 ms",
        "cpu ms",
        "load",
        "fail",
    )
    widths = (5, 10, 10, 10, 9, 9, 8, 6, 6)
    print(f"{'server':<7}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    summary = []
    for level in args.levels:
        requests = [signed_request(ingest.url, args.batch) for _ in range(args.requests)]
        started = time.perf_counter()
        measured = await load(ingest.url, requests, level, pid=ingest.pid)
        on_kafka = await drained_after(ingest.dsn, started) if ingest.dsn else None
        baseline = await load(bare.url, requests, level, pid=bare.pid)
        print(_row("ingest", level, measured, args.batch, on_kafka))
        print(_row("bare", level, baseline, args.batch, None))
        summary.append((level, measured, baseline))
    print("\nratio ingest/bare (throughput; p99 latency; server CPU per request)")
    for level, measured, baseline in summary:
        print(
            f"  c={level:<3} {measured.rate / baseline.rate:6.2f}x throughput, "
            f"p99 {measured.percentile(0.99) / baseline.percentile(0.99):5.1f}x, "
            f"cpu {measured.cpu_ms_per_request / max(baseline.cpu_ms_per_request, 1e-3):5.1f}x "
            f"(median of ingest latencies {statistics.median(measured.latencies) * 1000:.1f} ms)"
        )


def main() -> None:
    """Start everything, measure, stop everything."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument(
        "--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32, 64]
    )
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        serve_bare(args.bare_server)
        return
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as name, ExitStack() as stack:
        tmp = Path(name)
        bootstrap, database_url = stack.enter_context(infrastructure(tmp))
        ingest_port, bare_port = free_port(), free_port()
        env = _ingest_env(tmp, bootstrap, database_url, ingest_port)
        subprocess.run([str(BIN / "tandem-ingest"), "migrate"], env=env, check=True)  # noqa: S603
        ingest_pid = stack.enter_context(
            _process(
                [str(BIN / "tandem-ingest"), "serve"],
                env,
                tmp / "ingest.log",
                f"http://127.0.0.1:{ingest_port}/healthz",
            )
        )
        bare_pid = stack.enter_context(
            _process(
                [sys.executable, "-m", "benchmarks.ingest", "--bare-server", str(bare_port)],
                dict(os.environ),
                tmp / "bare.log",
                f"http://127.0.0.1:{bare_port}/",
            )
        )
        asyncio.run(
            run_levels(
                Server(
                    f"http://127.0.0.1:{ingest_port}/v1/webhooks/hubspot",
                    ingest_pid,
                    listen_dsn(database_url),
                ),
                Server(f"http://127.0.0.1:{bare_port}/v1/webhooks/hubspot", bare_pid),
                args,
            )
        )


if __name__ == "__main__":
    main()
