"""Progress of `make bench-pipeline`'s services, read from what each one leaves behind: its
table rows, its input topic's end offsets, the Slack messages, its Prometheus counters."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.pipeline_stack import Stack
from tandem_shared import topics

# Each service's own output for the burst: what it writes once an event is through it.
OUTPUT_COUNTS = {
    "router": "SELECT count(*) FROM router.decisions",
    "sla-monitor": "SELECT count(*) FROM sla_monitor.clocks",
    "api-gateway": (
        "SELECT count(*) FROM api_gateway.handoffs "
        "WHERE decided_at IS NOT NULL AND sla_started_at IS NOT NULL"
    ),
}
ROUTED_INTENTS = (
    "SELECT count(*) FROM router.routed_events WHERE event_type = 'tandem.intent.observed'"
)
# The topic each service's burst input arrives on.
INPUT_TOPICS = {
    "router": topics.ENGAGEMENT,
    "sla-monitor": topics.ROUTING,
    "alerts": topics.ALERT_REQUESTS,
    "api-gateway": topics.ROUTING,
}


class Probe:
    """Reads the services' progress: table counts, topic end offsets, Slack receipts, metrics."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._db: asyncpg.Connection | None = None
        self._kafka: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}
        self.slack_seen: list[tuple[float, list[int]]] = []
        self.outstanding: set[int] = set()  # accounts whose meeting request is not on Slack yet
        self._http = None

    async def __aenter__(self) -> Probe:
        self._db = await asyncpg.connect(self.stack.dsn)
        self._kafka = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap)
        await self._kafka.start()
        for topic in {*INPUT_TOPICS.values(), topics.INTENT}:
            parts = self._kafka.partitions_for_topic(topic) or set()
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(parts)]
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._db is not None:
            await self._db.close()
        if self._kafka is not None:
            await self._kafka.stop()

    async def counts(self) -> dict[str, int]:
        assert self._db is not None
        found = {}
        for name, query in OUTPUT_COUNTS.items():
            try:
                found[name] = int(await self._db.fetchval(query))
            except asyncpg.PostgresError:
                found[name] = -1  # a schema mid-change in this tree: reported, not fatal
        return found

    async def routed_intents(self) -> int:
        """Return how many intent events the router has committed (its archive of inputs)."""
        assert self._db is not None
        return int(await self._db.fetchval(ROUTED_INTENTS))

    async def rows(self, service: str, since: float) -> dict[int, float]:
        """Return when `service`'s transactions took up each bench account (see ROW_STAMPS)."""
        assert self._db is not None
        return await row_stamps(self._db, ROW_STAMPS[service], since)

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        assert self._kafka is not None
        parts = self._partitions.get(topic) or []
        return dict(await self._kafka.end_offsets(parts)) if parts else {}

    async def topic_total(self, topic: str) -> int:
        return sum((await self.end_offsets(topic)).values())

    async def slack(self) -> list[tuple[float, list[int]]]:
        """Return every Slack message received so far as (monotonic time, account numbers)."""
        url = f"{self.stack.slack_control}/received?after={len(self.slack_seen)}"
        body = await asyncio.to_thread(_get, url)
        self.slack_seen += [(at, markers) for at, markers in orjson.loads(body)["items"]]
        return self.slack_seen

    async def consumed(self, service: str, topic: str) -> float:
        """Return the service's tandem_events_consumed_total for `topic`, all outcomes."""
        text = (
            await asyncio.to_thread(_get, self.stack.services[service].url + "/metrics")
        ).decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("tandem_events_consumed_total{") and f'topic="{topic}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


# The bench account a record is about: its domain (engagement) or its name (alert requests).
_ACCOUNT = re.compile(rb"[Bb]enchco ?(\d{7})")


async def stamps(bootstrap: str, topic: str, start: dict[TopicPartition, int]) -> dict[int, float]:
    """Return, per bench account, the monotonic time its first record from `start` on was
    written to `topic` (the producer's timestamp: when the service's relay published it)."""
    shift = time.time() - time.monotonic()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    first: dict[int, float] = {}
    try:
        parts = list(start)
        consumer.assign(parts)
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        end = await consumer.end_offsets(parts)
        pending = {tp for tp in parts if end[tp] > start[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=5000)
            if not batches:
                break
            for tp, records in batches.items():
                for record in records:
                    for number in {int(n) for n in _ACCOUNT.findall(record.value or b"")}:
                        first.setdefault(number, record.timestamp / 1000 - shift)
                    if record.offset + 1 >= end[tp]:
                        pending.discard(tp)
    finally:
        await consumer.stop()
    return first


# When each service's transaction took up a bench account's meeting request (its now()).
ROW_STAMPS = {
    "router": (
        "SELECT value, created_at FROM router.outbox_published "
        "WHERE topic = 'tandem.alert-requests' AND created_at >= $1 "
        "UNION ALL SELECT value, created_at FROM router.outbox "
        "WHERE topic = 'tandem.alert-requests' AND created_at >= $1"
    ),
    "alerts": (
        "SELECT convert_to(account_key, 'UTF8'), received_at FROM alerts.alerts "
        "WHERE received_at >= $1 AND account_key IS NOT NULL"
    ),
}


async def row_stamps(db: asyncpg.Connection, query: str, since: float) -> dict[int, float]:
    """Return, per bench account, the monotonic time of its first row `query` finds."""
    shift = time.time() - time.monotonic()
    after = datetime.fromtimestamp(since + shift, UTC)
    first: dict[int, float] = {}
    for value, at in sorted(await db.fetch(query, after), key=lambda row: row[1]):
        for number in {int(n) for n in _ACCOUNT.findall(bytes(value))}:
            first.setdefault(number, at.timestamp() - shift)
    return first


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
        return bytes(response.read())
