"""`make bench-reads`: every gateway read endpoint over a year of a mid-size team's data.

Starts embedded PostgreSQL (or uses DATABASE_URL, a database given to the bench), migrates
the gateway's schema, seeds a year (benchmarks/reads_seed.py: 5,000 TAL accounts, 100,000
handoffs with clocks and alerts, 2,000,000 timeline entries, 20,000 deals; a tenth with
--quick), then serves the gateway's app in a process of its own (benchmarks/reads_server.py:
uvicorn, as the service serves, so the readers' event loop is not the app's) and measures
p50/p95/p99 of each endpoint, the alignment metrics with each filter included: first one
reader, each endpoint in turn; then 16 readers at once, each going through every endpoint
in its own random order, as open dashboards do. The floor is `GET /v1/me` in the same run
(authentication and one query, the least a read costs).

Results: a table per level, the targets missed, and .tandem/bench/reads-<time>.json.

    make bench-reads [BENCH_ARGS="--quick"]
    python -m benchmarks.reads [--quick] [--requests 40] [--readers 16] [--rounds 3]
        [--endpoint-seconds 15]

Another tree (a worktree of an older commit) is measured by copying benchmarks/reads*.py into it
and running them with that tree's venv: the app, its queries and migrations come from that tree.
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from benchmarks.reads_report import FLOOR, Samples, floor_p50, misses, table, write_results
from benchmarks.reads_seed import BENCH_REP, Size, account_key, seed
from benchmarks.reads_server import settings_for
from tandem_api_gateway.adapters import key_store
from tandem_api_gateway.domain.api_keys import generate_api_key
from tandem_api_gateway.domain.authz import Role
from tandem_api_gateway.main import MIGRATIONS, SCHEMA
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.db import create_engine, migrate, session_factory
from tandem_shared.local.embedded import ensure_database, start_postgres
from tandem_shared.service import tune_gc
from tandem_shared.settings import async_url

ROOT = Path(__file__).resolve().parents[1]
LEADER = "lea.leader"


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: str  # floor / metrics / list / item
    path: str
    params: dict[str, str] = field(default_factory=dict)
    person: str | None = LEADER  # None: no key (health)


def endpoints(busy: str, typical: str) -> list[Endpoint]:
    """Every read endpoint with each of its filters, as a leader and, where it differs, a rep."""
    metrics = "/v1/metrics/alignment"
    found = [
        Endpoint(FLOOR, "floor", "/v1/me"),
        Endpoint("healthz (no key)", "floor", "/healthz", person=None),
        *(
            Endpoint(f"metrics period={p}", "metrics", metrics, {"period": p})
            for p in ("7d", "30d", "90d", "365d", "all")
        ),
        *(
            Endpoint(f"metrics 365d tier={t}", "metrics", metrics, {"period": "365d", "tier": t})
            for t in ("1", "2", "3")
        ),
        *(
            Endpoint(f"metrics 365d team={t}", "metrics", metrics, {"period": "365d", "team": t})
            for t in ("sales", "marketing")
        ),
        Endpoint(
            "metrics all tier=2 team=sales",
            "metrics",
            metrics,
            {"period": "all", "tier": "2", "team": "sales"},
        ),
        Endpoint("accounts", "list", "/v1/accounts"),
        Endpoint("accounts in_tal limit=200", "list", "/v1/accounts", {"in_tal": "true"}),
        Endpoint("accounts tier=1", "list", "/v1/accounts", {"tier": "1"}),
        Endpoint("account (busiest)", "item", f"/v1/accounts/{busy}"),
        Endpoint("timeline (busiest)", "list", f"/v1/accounts/{busy}/timeline"),
        Endpoint("timeline (typical)", "list", f"/v1/accounts/{typical}/timeline"),
        Endpoint(
            "timeline (busiest) as a rep", "list", f"/v1/accounts/{busy}/timeline", {}, BENCH_REP
        ),
        Endpoint("handoffs", "list", "/v1/handoffs"),
        Endpoint("handoffs status=open limit=100", "list", "/v1/handoffs", {"status": "open"}),
        Endpoint(
            "handoffs status=met tier=2", "list", "/v1/handoffs", {"status": "met", "tier": "2"}
        ),
        Endpoint("handoffs tier=1", "list", "/v1/handoffs", {"tier": "1"}),
        Endpoint(
            "handoffs signal=intent_surge", "list", "/v1/handoffs", {"signal": "intent_surge"}
        ),
        Endpoint("handoffs assignee", "list", "/v1/handoffs", {"assignee": BENCH_REP}),
        Endpoint("handoffs account_key", "list", "/v1/handoffs", {"account_key": typical}),
        Endpoint("handoffs as a rep", "list", "/v1/handoffs", {}, BENCH_REP),
        Endpoint("breaches", "list", "/v1/breaches"),
        Endpoint("breaches assignee", "list", "/v1/breaches", {"assignee": BENCH_REP}),
        Endpoint("breaches tier=1", "list", "/v1/breaches", {"tier": "1"}),
        Endpoint("breaches as a rep", "list", "/v1/breaches", {}, BENCH_REP),
        Endpoint("alerts limit=20", "list", "/v1/alerts", {"limit": "20"}),
        Endpoint("alerts kind=sla_breach", "list", "/v1/alerts", {"kind": "sla_breach"}),
        Endpoint("alerts channel=email", "list", "/v1/alerts", {"channel": "email"}),
        Endpoint("alerts account_key", "list", "/v1/alerts", {"account_key": busy}),
        Endpoint("alerts as a rep", "list", "/v1/alerts", {}, BENCH_REP),
        Endpoint("handoff", "item", "/v1/handoffs/h-500"),
        Endpoint("alert", "item", "/v1/alerts/a-h-500"),
    ]
    limits = {"accounts in_tal limit=200": "200", "handoffs status=open limit=100": "100"}
    return [
        Endpoint(e.name, e.kind, e.path, {**e.params, "limit": limits[e.name]}, e.person)
        if e.name in limits
        else e
        for e in found
    ]


# ---- infrastructure --------------------------------------------------------------------------


@contextmanager
def database(tmp: Path) -> Iterator[str]:
    """Yield a database URL: DATABASE_URL (a database of its own: the bench fills the gateway's
    schema in it), else an embedded PostgreSQL for the run."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield async_url(external)
        return
    pg = start_postgres(tmp / "pgdata", keep=False)
    try:
        asyncio.run(ensure_database(pg))
        yield pg.url()
    finally:
        pg.stop()


async def seeded(url: str, size: Size, now: datetime) -> dict[str, Any]:
    """Migrate and seed; return the row counts and how long each step took."""
    started = time.perf_counter()
    settings = settings_for(url)
    await migrate(settings=settings.database, schema=SCHEMA, script_location=MIGRATIONS)
    migrated = time.perf_counter()
    server = {"search_path": f"{SCHEMA},public"}
    connection = await asyncpg.connect(listen_dsn(url), server_settings=server)
    try:
        counts = await seed(connection, size, now)
    finally:
        await connection.close()
    return {
        "rows": counts,
        "migrate_s": round(migrated - started, 1),
        "seed_s": round(time.perf_counter() - migrated, 1),
    }


@asynccontextmanager
async def client_for(url: str, now: datetime) -> AsyncIterator[tuple[httpx.AsyncClient, dict]]:
    """The gateway's app in a process of its own on the seeded database (benchmarks.reads_server);
    yield a client and a key per person."""
    settings = settings_for(url)
    engine = create_engine(settings.database, schema=SCHEMA)
    sessions = session_factory(engine)
    keys: dict[str | None, dict[str, str]] = {None: {}}
    try:
        for person, role in ((LEADER, Role.REVOPS_ADMIN), (BENCH_REP, Role.REP)):
            issued = generate_api_key(pepper=settings.pepper)
            async with sessions() as session, session.begin():
                await key_store.add_key(
                    session,
                    key_id=issued.key_id,
                    key_hash=issued.key_hash,
                    role=role,
                    person_id=person,
                )
            keys[person] = {"Authorization": f"Bearer {issued.plaintext}"}
    finally:
        await engine.dispose()
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "benchmarks.reads_server", "--url", url),
        *("--now", now.isoformat(), "--port", str(port)),
        cwd=ROOT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            await _until_up(client, server)
            yield client, keys
    finally:
        if server.returncode is None:
            server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until_up(client: httpx.AsyncClient, server: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.returncode is not None:
            raise RuntimeError(f"the gateway's server exited with {server.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        await asyncio.sleep(0.2)
    raise TimeoutError("the gateway's server did not answer /healthz within 60 s")


# ---- measuring -------------------------------------------------------------------------------


async def call(client: httpx.AsyncClient, keys: dict, endpoint: Endpoint) -> tuple[float, bool]:
    """Request an endpoint once; return (ms, succeeded)."""
    started = time.perf_counter()
    response = await client.get(
        endpoint.path, params=endpoint.params, headers=keys[endpoint.person]
    )
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, response.status_code == 200


async def with_next_pages(client: httpx.AsyncClient, keys: dict, found: list[Endpoint]) -> list:
    """Add the second page of each listing (resumed from its first page's cursor)."""
    result = []
    for endpoint in found:
        result.append(endpoint)
        if endpoint.kind != "list":
            continue
        response = await client.get(
            endpoint.path, params=endpoint.params, headers=keys[endpoint.person]
        )
        cursor = response.json().get("next_cursor") if response.status_code == 200 else None
        if cursor:
            params = {**endpoint.params, "cursor": cursor}
            result.append(
                Endpoint(
                    f"{endpoint.name} (page 2)", "list", endpoint.path, params, endpoint.person
                )
            )
    return result


async def one_reader(
    client: httpx.AsyncClient, keys: dict, found: list[Endpoint], requests: int, budget: float
) -> list[Samples]:
    """Each endpoint in turn: two warm-up requests, then `requests` (or `budget` seconds)."""
    measured = []
    for endpoint in found:
        samples = Samples(endpoint.name, endpoint.kind)
        for _ in range(2):
            await call(client, keys, endpoint)
        deadline = time.monotonic() + budget
        while len(samples.latencies_ms) < requests and time.monotonic() < deadline:
            ms, ok = await call(client, keys, endpoint)
            samples.latencies_ms.append(ms)
            samples.failures += not ok
        measured.append(samples)
        middle = sorted(samples.latencies_ms)[len(samples.latencies_ms) // 2]
        print(f"  {endpoint.name:<52} p50 {middle:8.1f} ms", flush=True)
    return measured


async def many_readers(
    client: httpx.AsyncClient,
    keys: dict,
    found: list[Endpoint],
    readers: int,
    rounds: int,
    budget: float,
) -> list[Samples]:
    """`readers` at once, each through every endpoint `rounds` times in its own random order."""
    by_name = {e.name: Samples(e.name, e.kind) for e in found}
    deadline = time.monotonic() + budget

    async def reader(seed_: int) -> None:
        order = random.Random(seed_)
        for _ in range(rounds):
            for endpoint in order.sample(found, len(found)):
                if time.monotonic() > deadline:
                    return
                ms, ok = await call(client, keys, endpoint)
                by_name[endpoint.name].latencies_ms.append(ms)
                by_name[endpoint.name].failures += not ok

    await asyncio.gather(*(reader(n) for n in range(readers)))
    return list(by_name.values())


def _tree() -> str:
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607 - the developer's git
            cwd=Path.cwd(),
            capture_output=True,
            text=True,
            check=True,
        )
        return found.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def measure(url: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """Seed, then measure both levels; return the results."""
    size = Size.of(0.1 if args.quick else 1.0)
    print(f"seeding {size} ...", flush=True)
    setup = await seeded(url, size, now)
    print(f"seeded in {setup['seed_s']} s: {setup['rows']}", flush=True)
    tune_gc()  # the readers' own full collections would count as the gateway's latency
    levels: dict[str, list[dict[str, Any]]] = {}
    async with client_for(url, now) as (client, keys):
        found = await with_next_pages(client, keys, endpoints(account_key(1), account_key(500)))
        print("1 reader:", flush=True)
        single = await one_reader(client, keys, found, args.requests, args.endpoint_seconds)
        floor = floor_p50(single)
        levels["1"] = [s.summary(floor) for s in single]
        print(f"{args.readers} readers ...", flush=True)
        budget = args.endpoint_seconds * len(found)
        concurrent = await many_readers(client, keys, found, args.readers, args.rounds, budget)
        levels[str(args.readers)] = [s.summary(floor_p50(concurrent)) for s in concurrent]
    return {
        "started": now.strftime("%Y%m%dT%H%M%SZ"),
        "tree": _tree(),
        "size": "quick" if args.quick else "year",
        "setup": {**setup, "seeded": vars(size)},
        "levels": levels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reads", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the data")
    parser.add_argument("--requests", type=int, default=40, help="per endpoint, one reader")
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="passes of each concurrent reader")
    parser.add_argument(
        "--endpoint-seconds", type=float, default=15.0, help="time budget per endpoint"
    )
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        tempfile.TemporaryDirectory(prefix="tandem-bench-reads-") as tmp,
        database(Path(tmp)) as url,
    ):
        result = asyncio.run(measure(url, args, now))
    for level, rows in result["levels"].items():
        floor = next((r["p50_ms"] for r in rows if r["endpoint"] == FLOOR), None)
        print()
        print(table(int(level), rows, floor))
    missed = [m for level, rows in result["levels"].items() for m in misses(int(level), rows)]
    result["targets_missed"] = missed
    print()
    print("targets missed:" if missed else "every target met")
    for line in missed:
        print(f"  {line}")
    path = write_results(result, ROOT / ".tandem" / "bench", result["started"])
    print(f"results: {path}")


if __name__ == "__main__":
    main()
