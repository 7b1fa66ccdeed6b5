"""The floor of `make bench-pipeline`: the burst's own messages relayed through three bare
aiokafka hops (consume topic A, produce to topic B, ...), one process per hop like the services,
with no processing. What Kafka and Python alone cost on this machine, in the same run.

    python -m benchmarks.pipeline_floor --bootstrap B --source A --target B --group G  (one hop)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.pipeline_report import percentile
from tandem_shared.kafka import ensure_topics
from tandem_shared.settings import KafkaSettings
from tandem_shared.topics import TopicSpec

HOPS = 3
SENT_HEADER = "bench-sent"
# The hops fetch like the services of the tree under test (aiokafka's 500 ms before the setting).
FETCH_WAIT_MS = int(getattr(KafkaSettings(), "fetch_max_wait_ms", 500))


async def hop(bootstrap: str, source: str, target: str, group: str, fetch_wait_ms: int) -> None:
    """Relay every record of `source` to `target`, committing after the broker acknowledged."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=300,
        rebalance_timeout_ms=1000,
        fetch_max_wait_ms=fetch_wait_ms,
    )
    # The services' producer settings (tandem_shared.kafka.create_producer).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
    )
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            sends = [
                await producer.send(target, r.value, key=r.key, headers=list(r.headers))
                for records in batches.values()
                for r in records
            ]
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


@asynccontextmanager
async def relay(
    bootstrap: str, run: str, log_dir: Path, partitions: int = 6
) -> AsyncIterator[list[str]]:
    """Create topics A..D of this run and start one hop process per pair; yield the topics."""
    names = [f"bench.floor.{run}.{i}" for i in range(HOPS + 1)]
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap), tuple(TopicSpec(n, partitions) for n in names)
    )
    procs = [
        subprocess.Popen(  # noqa: S603, ASYNC220 - this module, fixed arguments; starts at once
            [
                sys.executable,
                "-m",
                "benchmarks.pipeline_floor",
                "--bootstrap",
                bootstrap,
                "--source",
                names[i],
                "--target",
                names[i + 1],
                "--group",
                f"{names[i]}.hop",
                "--fetch-wait-ms",
                str(FETCH_WAIT_MS),
            ],
            stdout=(log_dir / f"floor-hop{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(HOPS)
    ]
    try:
        yield names
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def read_messages(
    bootstrap: str, topic: str, start: dict[TopicPartition, int], count: int, within: float = 30
) -> list[tuple[bytes | None, bytes]]:
    """Read `count` records of `topic` from the offsets `start` (the burst's envelopes)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[bytes | None, bytes]] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + within
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            found += [(r.key, r.value) for rs in batches.values() for r in rs if r.value]
    finally:
        await consumer.stop()
    return found[:count]


class Arrivals:
    """Reads the last topic and stamps each message's arrival (monotonic) by its tag header."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        # The run's own, fresh topic: read from its start.
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.at: dict[bytes, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Arrivals:
        await self.consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=50, max_records=2000)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    sent = dict(record.headers).get(SENT_HEADER)
                    if sent is not None:
                        self.at[sent] = now

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


async def floor_run(
    bootstrap: str,
    names: list[str],
    messages: list[tuple[bytes | None, bytes]],
    *,
    levels: list[float],
    seconds: float,
    within: float,
) -> dict[str, object]:
    """Burst rate and, per level, latency percentiles of the messages through the hops."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
    )
    await producer.start()
    result: dict[str, object] = {"messages": len(messages), "fetch_wait_ms": FETCH_WAIT_MS}
    try:
        async with Arrivals(bootstrap, names[-1]) as arrivals:
            await _warm(producer, names[0], arrivals)
            started = time.monotonic()
            futures = [
                await producer.send(names[0], value, key=key, headers=[(SENT_HEADER, b"b%d" % i)])
                for i, (key, value) in enumerate(messages)
            ]
            await asyncio.gather(*futures)
            deadline = started + within
            while len(arrivals.at) < len(messages) + 1 and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.02)
            burst = [t for k, t in arrivals.at.items() if k.startswith(b"b")]
            result["burst_done"] = len(burst)
            result["burst_events_per_s"] = (
                len(burst) / max(max(burst) - started, 1e-3) if burst else None
            )
            result["levels"] = [
                await _level(producer, names[0], arrivals, messages, rate, seconds, within)
                for rate in levels
            ]
    finally:
        await producer.stop()
    return result


async def _warm(producer: AIOKafkaProducer, topic: str, arrivals: Arrivals) -> None:
    """One message through every hop first: the hops' groups have joined when it arrives."""
    await (await producer.send(topic, b"{}", headers=[(SENT_HEADER, b"warm")]))
    deadline = time.monotonic() + 60
    while b"warm" not in arrivals.at and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
        await asyncio.sleep(0.05)


async def _level(
    producer: AIOKafkaProducer,
    topic: str,
    arrivals: Arrivals,
    messages: list[tuple[bytes | None, bytes]],
    rate: float,
    seconds: float,
    within: float,
) -> dict[str, object]:
    total = int(rate * seconds)
    sent: dict[bytes, float] = {}
    started = time.monotonic()
    for index in range(total):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        key, value = messages[index % len(messages)] if messages else (None, b"{}")
        tag = b"r%d-%d" % (int(rate), index)
        sent[tag] = time.monotonic()
        await producer.send(topic, value, key=key, headers=[(SENT_HEADER, tag)])
    deadline = time.monotonic() + within
    while any(t not in arrivals.at for t in sent) and time.monotonic() < deadline:  # noqa: ASYNC110 - polled
        await asyncio.sleep(0.05)
    latencies = [(arrivals.at[t] - s) * 1000 for t, s in sent.items() if t in arrivals.at]
    return {
        "rate": rate,
        "sent": total,
        "received": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_floor")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--fetch-wait-ms", type=int, default=FETCH_WAIT_MS)
    args = parser.parse_args()
    asyncio.run(hop(args.bootstrap, args.source, args.target, args.group, args.fetch_wait_ms))


if __name__ == "__main__":
    main()
