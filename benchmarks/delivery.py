"""The alerts delivery worker on recorded deliveries: CPU per message sent, and send latency.

Starts embedded PostgreSQL (or uses DATABASE_URL) and the bench's Slack (benchmarks/slack_sink.py,
its own process), records alert requests with the real consumer handler, and runs the real
DeliveryWorker (slack_sdk to the local Slack, the log sink for email) with Slack pacing lifted,
as the pipeline bench does. Each meeting request asks for a handoff alert to one of 20 bench AEs
(Slack, and email through the log sink) and an FYI to Mia (Slack): many quiet destinations and
one busy one.

Two modes:
- drain (default): queue `--events` requests, then time the worker sending them all: messages/s
  and CPU per message (this process, PostgreSQL). The backlog is not coalesced (pacing's
  max delay is raised), so every delivery is one message, like a steady stream.
- `--rate R`: record R requests a second while the worker runs, as a consumer would (waking the
  worker after each commit), and report request-to-Slack latency; CPU includes the recording.

    python -m benchmarks.delivery [--events 2000] [--rate 0] [--profile] [--top 25]
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import sqlalchemy as sa
import yaml

from benchmarks.handlers import _cpu_of, database_url, quiet_production_logging
from benchmarks.pipeline_stack import AES, SLACK_TOKEN, write_config
from benchmarks.slack_sink import ACCOUNT_NAME
from tandem_shared.db import create_engine, migrate, session_factory
from tandem_shared.directory import load_directory
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import AlertKind, AlertRequested, EventType, Signal, Tier, Urgency
from tandem_shared.local.embedded import free_port
from tandem_shared.settings import DatabaseSettings
from tandem_shared.uow import unit_of_work

ROOT = Path(__file__).resolve().parents[1]


def server_cpu(data_dir: Path | None) -> float:
    """CPU seconds of the embedded server so far: the postmaster, its live children and the
    children it has reaped (pooled connections come and go while the worker runs)."""
    if data_dir is None:
        return 0.0
    postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
    own: float = sum(postmaster.cpu_times())  # user, system, children_user, children_system
    return own + _cpu_of(postmaster.children(recursive=True))


@dataclass(frozen=True)
class Measured:
    messages: int
    wall: float
    cpu: float
    db_cpu: float
    latencies: list[float]

    def line(self) -> str:
        per = 1000 / max(1, self.messages)
        text = (
            f"delivery {self.messages:>6} messages  {self.messages / self.wall:>7.0f} messages/s  "
            f"cpu {self.cpu * per:6.3f} ms/message  db cpu {self.db_cpu * per:6.3f} ms/message"
        )
        if self.latencies:
            ordered = sorted(self.latencies)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            text += (
                f"  request-to-Slack p50 {statistics.median(ordered) * 1000:6.0f} ms"
                f"  p95 {p95 * 1000:6.0f} ms  max {ordered[-1] * 1000:6.0f} ms"
            )
        return text


def requests_of(number: int) -> list[AlertRequested]:
    """A meeting request's alerts: the handoff to its AE (urgent) and the FYI to Mia (normal)."""
    now = utcnow()
    alerts: list[AlertRequested] = []
    ae = f"bench.ae{number % AES:02d}"
    name = ACCOUNT_NAME.format(number)
    common = {
        "account_key": f"benchco{number:07d}.com",
        "account_name": name,
        "tier": Tier.T1,
        "signal": Signal.MEETING_REQUEST,
        "handoff_id": f"handoff-{number}",
        "assignee_id": ae,
        "requested_at": now,
        "summary": "A contact asked for a meeting",
    }
    alerts.append(
        AlertRequested(
            alert_id=f"alert-{number}-h",
            kind=AlertKind.HANDOFF,
            urgency=Urgency.URGENT,
            recipient_ids=[ae],
            title=f"Meeting request: {name} (tier 1)",
            reason="the account's AE",
            **common,
        )
    )
    alerts.append(
        AlertRequested(
            alert_id=f"alert-{number}-m",
            kind=AlertKind.MARKETING_FYI,
            urgency=Urgency.NORMAL,
            recipient_ids=["mia.marketing"],
            title=f"Meeting request at {name}: handed to {ae}",
            **common,
        )
    )
    return alerts


def envelopes_of(number: int) -> list[Envelope]:
    return [
        Envelope.wrap(
            alert,
            type=EventType.ALERT_REQUESTED,
            source="/bench",
            subject=alert.account_key,
            id=f"bench-{alert.alert_id}",
        )
        for alert in requests_of(number)
    ]


def bench_config(tmp: Path) -> Path:
    """The pipeline bench's config; the bench AEs take Slack and email, Mia has no digest."""
    config = write_config(tmp)
    people = yaml.safe_load((config / "people.yaml").read_text())
    for person in people["people"]:
        if person["id"].startswith("bench.ae"):
            person["preferences"] = {"channels": ["slack", "email"]}
    (config / "people.yaml").write_text(yaml.safe_dump(people))
    return config


@contextmanager
def slack_sink() -> Iterator[tuple[str, str]]:
    """Run the bench's Slack; yield its API base URL and its read-out URL."""
    port, control = free_port(), free_port()
    args = [sys.executable, "-m", "benchmarks.slack_sink", "--port", str(port)]
    args += ["--control-port", str(control), "--token", SLACK_TOKEN]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, env=env)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{control}/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/api/", f"http://127.0.0.1:{control}/received"
    finally:
        process.terminate()
        process.wait(timeout=10)


def received(url: str) -> list[tuple[float, list[int]]]:
    with urllib.request.urlopen(f"{url}?after=0", timeout=30) as answer:  # noqa: S310
        return [(at, markers) for at, markers in json.loads(answer.read())["items"]]


async def run_bench(
    database: DatabaseSettings,
    *,
    data_dir: Path | None,
    config: Path,
    slack_url: str,
    received_url: str,
    events: int,
    rate: float,
    profile: bool,
    top: int,
) -> Measured:
    from tandem_alerts.adapters.log_sink import LogSink
    from tandem_alerts.adapters.slack import SlackSender
    from tandem_alerts.delivery import DeliveryWorker
    from tandem_alerts.domain.plan import Transports
    from tandem_alerts.handlers import make_on_alert_requested
    from tandem_alerts.main import MIGRATIONS
    from tandem_alerts.sending import Senders
    from tandem_alerts.settings import AlertsOptions
    from tandem_shared.availability import LiveDirectory

    schema = f"alerts_bench_{uuid.uuid4().hex[:6]}"
    await migrate(settings=database, schema=schema, script_location=MIGRATIONS)
    engine = create_engine(database, schema=schema)
    sessions = session_factory(engine)
    directory = load_directory(config / "people.yaml")
    live = LiveDirectory(directory)
    handler = make_on_alert_requested(
        directory=directory,
        live=live,
        transports=Transports(slack=True, email=False),
        crm_base_url=None,
        clock=utcnow,
    )
    options = AlertsOptions(
        pacing_rate_per_second=1_000_000,
        pacing_burst=1_000_000,
        # Drain: a backlog queued up front would otherwise go as summaries after 3 s.
        pacing_max_delay_seconds=3.0 if rate else 3600.0,
    )
    slack = SlackSender(token=SLACK_TOKEN, base_url=slack_url, timeout=10)
    worker = DeliveryWorker(
        sessions=sessions,
        directory=directory,
        senders=Senders(slack=slack, email=None, log=LogSink()),
        options=options,
        clock=utcnow,
        live=live,
    )
    queued_at: dict[int, float] = {}

    async def record(numbers: range) -> None:
        async with unit_of_work(sessions) as uow:
            for number in numbers:
                for envelope in envelopes_of(number):
                    await handler(envelope, uow)
        now = time.monotonic()
        queued_at.update(dict.fromkeys(numbers, now))
        worker.wake()

    count_open = sa.text("SELECT count(*) FROM deliveries WHERE status IN ('pending', 'deferred')")

    async def open_deliveries() -> int:
        async with sessions() as session:
            return int((await session.scalar(count_open)) or 0)

    try:
        if not rate:
            for start in range(0, events, 100):
                await record(range(start, min(events, start + 100)))
        # CPU time, not wall time: the machine is shared, and waiting on Slack is not a cost.
        profiler = cProfile.Profile(time.process_time) if profile else None
        db_before, cpu_before, started = (
            server_cpu(data_dir),
            time.process_time(),
            time.perf_counter(),
        )
        if profiler is not None:
            profiler.enable()
        running = asyncio.create_task(worker.run())
        if rate:
            step = 0.1
            per_step = max(1, round(rate * step))
            for start in range(0, events, per_step):
                tick = time.perf_counter()
                await record(range(start, min(events, start + per_step)))
                await asyncio.sleep(max(0.0, step - (time.perf_counter() - tick)))
        while True:  # polled: the worker has no "all sent" event to wait on
            if not await open_deliveries():
                break
            await asyncio.sleep(0.05)
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - started
        cpu, db_cpu = time.process_time() - cpu_before, server_cpu(data_dir) - db_before
        worker.stop()
        await running
        async with sessions() as session:
            sent = int(
                (
                    await session.scalar(
                        sa.text("SELECT count(*) FROM deliveries WHERE status='sent'")
                    )
                )
                or 0
            )
        latencies = []
        if rate:
            for at, markers in received(received_url):
                latencies += [at - queued_at[m] for m in markers if m in queued_at]
        if profiler is not None:
            stats = pstats.Stats(profiler)
            print(f"---- delivery: top {top} by own time")
            stats.sort_stats("tottime").print_stats(top)
            print(f"---- delivery: top {top} by cumulative time")
            stats.sort_stats("cumulative").print_stats(top)
        return Measured(sent, wall, cpu, db_cpu, latencies)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="meeting requests")
    parser.add_argument("--rate", type=float, default=0, help="requests/s while sending (0: drain)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    quiet_production_logging()
    with (
        tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp,
        database_url(Path(tmp)) as (url, data),
        slack_sink() as (slack_url, received_url),
    ):
        database = DatabaseSettings(url=url, pool_size=10)
        result = asyncio.run(
            run_bench(
                database,
                data_dir=data,
                config=bench_config(Path(tmp)),
                slack_url=slack_url,
                received_url=received_url,
                events=args.events,
                rate=args.rate,
                profile=args.profile,
                top=args.top,
            )
        )
        print(result.line(), flush=True)


if __name__ == "__main__":
    main()
