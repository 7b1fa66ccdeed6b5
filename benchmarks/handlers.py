"""Consumer handlers on realistic events, without Kafka: events/s and CPU per event.

Starts embedded PostgreSQL (or uses DATABASE_URL), migrates a fresh schema per service and run,
then calls each service's consumer handler directly on N generated events in batched
transactions (one session and UnitOfWork per batch, like the consumer runtime), and prints
events/s, the benchmark process's CPU per event and PostgreSQL's CPU per event.

    python -m benchmarks.handlers [--events 2000] [--batch 100] [--partitions 1] [--repeat 1]
        [--services router,sla,alerts,gateway] [--profile] [--top 25]
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import hashlib
import logging
import os
import pstats
import statistics
import tempfile
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks import gateway_events
from benchmarks import handler_events as events
from tandem_shared.consumer import Handler
from tandem_shared.db import create_engine, migrate, session_factory
from tandem_shared.envelope import Envelope
from tandem_shared.local.embedded import ensure_database, start_postgres
from tandem_shared.settings import DatabaseSettings, TelemetrySettings, async_url
from tandem_shared.telemetry import configure_logging
from tandem_shared.uow import unit_of_work

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config/example"


@dataclass(frozen=True)
class Result:
    service: str
    events: int
    wall: float
    cpu: float  # this process
    sys: float  # of which in the kernel
    db_cpu: float  # PostgreSQL's processes
    digest: str  # of the events emitted and the tables' rows: equal digests, equal decisions

    def line(self) -> str:
        per = 1000 / self.events
        return (
            f"{self.service:<8} {self.events:>6} events  {self.events / self.wall:>8.0f} events/s  "
            f"cpu {self.cpu * per:6.3f} ms/event (sys {self.sys * per:5.3f})  "
            f"db cpu {self.db_cpu * per:6.3f} ms/event  "
            f"emitted {self.digest}"
        )


def _decided(row: dict[str, Any]) -> bytes:
    """An outbox row without what the wall clock or the trace put in it."""
    envelope = orjson.loads(row["value"])
    for field in ("time", "traceparent", "tracestate"):
        envelope.pop(field, None)
    topic: str = row["topic"]
    key: bytes = row["key"]
    return topic.encode() + key + orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class Bench:
    """One service under test: its schema's migrations, its handler and its events."""

    name: str
    migrations: Path
    schema: str
    setup: Callable[[AsyncEngine], Awaitable[Handler]]
    events: Callable[[int], list[Envelope]]
    tables: tuple[str, ...] = ()  # whose rows depend on the events alone (digested)


GATEWAY_TABLES = (
    "accounts",
    "handoffs",
    "alerts",
    "alert_deliveries",
    "deals",
    "crm_accounts",
    "timeline",
)


def benches() -> dict[str, Bench]:
    from tandem_alerts.main import MIGRATIONS as ALERTS
    from tandem_api_gateway.main import MIGRATIONS as GATEWAY
    from tandem_router.main import MIGRATIONS as ROUTER
    from tandem_sla_monitor.main import MIGRATIONS as SLA

    return {
        "router": Bench(
            "router",
            ROUTER,
            "router",
            events.router_setup,
            events.router_events,
            tables=("handoffs", "decisions"),
        ),
        "sla": Bench("sla", SLA, "sla_monitor", events.sla_setup, events.sla_events),
        "alerts": Bench("alerts", ALERTS, "alerts", events.alerts_setup, events.alerts_events),
        "gateway": Bench(
            "gateway",
            GATEWAY,
            "api_gateway",
            gateway_events.gateway_setup,
            gateway_events.gateway_events,
            tables=GATEWAY_TABLES,
        ),
    }


def _cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _server_processes(data_dir: Path | None) -> list[psutil.Process]:
    """The embedded server's postmaster and its children (backends included); none external."""
    if data_dir is None:
        return []
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children(recursive=True)]


def quiet_production_logging() -> None:
    """Log as the services do (JSON lines at INFO) into /dev/null: the cost counts, not the text."""
    configure_logging(TelemetrySettings(), service="bench")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the program's lifetime


async def run_bench(
    bench: Bench,
    database: DatabaseSettings,
    *,
    data_dir: Path | None,
    count: int,
    batch: int,
    partitions: int,
    profile: bool,
    top: int,
) -> Result:
    schema = f"{bench.schema}_bench_{uuid.uuid4().hex[:6]}"
    await migrate(settings=database, schema=schema, script_location=bench.migrations)
    engine = create_engine(database, schema=schema)
    sessions = session_factory(engine)
    try:
        handler = await bench.setup(engine)
        warmup = bench.events(min(200, count))
        measured = bench.events(count)

        async def lane(envelopes: list[Envelope]) -> None:
            for start in range(0, len(envelopes), batch):
                async with unit_of_work(sessions) as uow:
                    for envelope in envelopes[start : start + batch]:
                        await handler(envelope, uow)
                    emitted.extend(uow.pending)  # digested after the clock stops

        async def run(envelopes: list[Envelope]) -> None:
            # Partitions by subject, as Kafka keys them, each with its own transactions.
            lanes: list[list[Envelope]] = [[] for _ in range(partitions)]
            for envelope in envelopes:
                lanes[zlib.crc32(envelope.key) % partitions].append(envelope)
            await asyncio.gather(*(lane(events) for events in lanes))

        emitted: list[dict[str, Any]] = []
        await run(warmup)
        profiler = cProfile.Profile() if profile else None
        pg = _server_processes(data_dir)
        db_before, cpu_before, started = _cpu_of(pg), time.process_time(), time.perf_counter()
        sys_before = os.times().system
        if profiler is not None:
            profiler.enable()
        await run(measured)
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - started
        result = Result(
            bench.name,
            count,
            wall,
            time.process_time() - cpu_before,
            os.times().system - sys_before,
            _cpu_of(pg) - db_before,
            "",
        )
        digest = hashlib.sha256()
        for row in emitted:
            digest.update(_decided(row))
        async with sessions() as session:
            for table in bench.tables:
                rows = sa.text(f"SELECT string_agg(t::text, '|' ORDER BY t::text) FROM {table} t")
                digest.update(((await session.scalar(rows)) or "").encode())
        result = dataclasses.replace(result, digest=digest.hexdigest()[:16])
        if profiler is not None:
            stats = pstats.Stats(profiler)
            print(f"---- {bench.name}: top {top} by own time")
            stats.sort_stats("tottime").print_stats(top)
            print(f"---- {bench.name}: top {top} by cumulative time")
            stats.sort_stats("cumulative").print_stats(top)
        return result
    finally:
        await engine.dispose()


@contextmanager
def database_url(tmp: Path) -> Iterator[tuple[str, Path | None]]:
    """Yield the database URL and data directory: DATABASE_URL's, else an embedded server's."""
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL")
        if url:
            yield async_url(url), None
            return
        pg = start_postgres(tmp / "pgdata", keep=False)
        stack.callback(pg.stop)
        asyncio.run(ensure_database(pg))
        yield pg.url(), tmp / "pgdata"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="events per transaction")
    parser.add_argument(
        "--partitions", type=int, default=1, help="concurrent transactions (digests vary when >1)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per service (median shown)")
    parser.add_argument("--services", default="router,sla,alerts,gateway")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    quiet_production_logging()
    chosen = benches()
    names = [n.strip() for n in args.services.split(",") if n.strip()]
    unknown = [n for n in names if n not in chosen]
    if unknown:
        parser.error(f"unknown services {unknown}; choose from {sorted(chosen)}")
    with (
        tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp,
        database_url(Path(tmp)) as (url, data),
    ):
        database = DatabaseSettings(url=url, pool_size=max(2, args.partitions))
        results: list[Result] = []
        for name in names:
            runs = []
            for _ in range(args.repeat):
                result = asyncio.run(
                    run_bench(
                        chosen[name],
                        database,
                        data_dir=data,
                        count=args.events,
                        batch=args.batch,
                        partitions=args.partitions,
                        profile=args.profile,
                        top=args.top,
                    )
                )
                print(result.line(), flush=True)
                runs.append(result)
            results.append(sorted(runs, key=lambda r: r.wall)[len(runs) // 2])
        if args.repeat > 1:
            print("---- medians")
            for result in results:
                print(result.line())
        rates = [r.events / r.wall for r in results]
        if rates:
            print(f"slowest: {min(rates):.0f} events/s (mean {statistics.fmean(rates):.0f})")


if __name__ == "__main__":
    main()
