"""The ingest app wired to the session's database and broker, for the test_ingest_* modules.

The app runs in-process (httpx over ASGITransport) with its real outbox relay as a task; a
group-less consumer collects every canonical event of the shared topics, and tests pick theirs
by ids unique to them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from in_process import running
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_ingest.api import IngestContext
from tandem_ingest.commands import SCHEMA, ingest_settings
from tandem_ingest.domain.sources import parse_sources
from tandem_ingest.lookup_worker import LookupWorker
from tandem_ingest.main import MIGRATIONS, build_service
from tandem_ingest.settings import IngestOptions
from tandem_shared import topics
from tandem_shared.db import migrate
from tandem_shared.envelope import Envelope
from tandem_shared.outbox import outbox
from tandem_shared.settings import OutboxSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vendor"
CANONICAL_TOPICS = (topics.CRM, topics.ENGAGEMENT, topics.INTENT)


def fixture_bytes(relative: str) -> bytes:
    """Return a vendor sample payload."""
    return (FIXTURES / relative).read_bytes()


# HubSpot decodes only the escapes of these characters in the URI before signing (VENDORS.md).
_HUBSPOT_DECODED = ":/?@!$'()*,;"


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """Sign per HubSpot v3, written independently of the code under test."""
    for char in _HUBSPOT_DECODED:
        uri = uri.replace(f"%{ord(char):02X}", char)
    message = f"{method}{uri}".encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_v3_headers(secret: str, uri: str, body: bytes) -> dict[str, str]:
    """The headers of a JSON delivery POSTed to `uri` now, signed per HubSpot v3."""
    timestamp_ms = int(time.time() * 1000)
    return {
        "content-type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_v3_signature(secret, "POST", uri, body, timestamp_ms),
        "X-HubSpot-Request-Timestamp": str(timestamp_ms),
    }


def standard_webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign per Standard Webhooks, written independently of the code under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_webhook_headers(secret: str, body: bytes, *, age: int = 0) -> dict[str, str]:
    """The headers of a JSON delivery signed per Standard Webhooks, `age` seconds ago."""
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time()) - age
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhook_signature(secret, msg_id, timestamp, body),
    }


@dataclass
class EventCollector:
    """Reads the canonical topics from the beginning into memory, without a consumer group."""

    bootstrap: str
    envelopes: list[tuple[str, Envelope]] = field(default_factory=list)
    _read_up_to: dict[TopicPartition, int] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *CANONICAL_TOPICS,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for partition, records in batch.items():
                self.envelopes.extend(
                    (r.topic, Envelope.from_bytes(r.value or b"")) for r in records
                )
                self._read_up_to[partition] = records[-1].offset + 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def matching(self, predicate: Callable[[Envelope], bool]) -> list[tuple[str, Envelope]]:
        return [(topic, env) for topic, env in self.envelopes if predicate(env)]

    async def caught_up(self) -> None:
        """Wait until everything on the topics now has been read."""
        assert self._consumer is not None
        partitions = self._consumer.assignment()
        ends = await self._consumer.end_offsets(list(partitions))
        while any(self._read_up_to.get(tp, 0) < end for tp, end in ends.items()):
            await asyncio.sleep(0.05)

    async def wait_for(
        self, predicate: Callable[[Envelope], bool], *, count: int = 1, timeout: float = 20
    ) -> list[tuple[str, Envelope]]:
        """Wait for `count` matching events, then for the topics to be read to their end."""
        async with asyncio.timeout(timeout):
            while len(self.matching(predicate)) < count:
                await asyncio.sleep(0.05)
            await self.caught_up()
        return self.matching(predicate)


@dataclass
class IngestHarness:
    client: httpx.AsyncClient
    context: IngestContext
    sessions: async_sessionmaker[AsyncSession]
    events: EventCollector

    async def outbox_drained(self, timeout: float = 20) -> None:
        """Wait until the relay has published every committed outbox row."""
        async with asyncio.timeout(timeout):
            while await self.scalar(
                sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
            ):
                await asyncio.sleep(0.05)

    async def scalar(self, query: Any) -> Any:
        async with self.sessions() as session:
            return (await session.execute(query)).scalar()

    async def settled(
        self, predicate: Callable[[Envelope], bool], *, count: int = 1
    ) -> list[tuple[str, Envelope]]:
        """The matching events once the outbox is drained and the topics are read to their end."""
        await self.events.wait_for(predicate, count=count)
        await self.outbox_drained()
        await self.events.caught_up()
        return self.events.matching(predicate)


@contextlib.asynccontextmanager
async def running_ingest(
    infra: Any,  # the session's conftest.Infra
    sources: Mapping[str, Any],
    *,
    options: IngestOptions | None = None,
    **settings_updates: BaseModel,
) -> AsyncIterator[IngestHarness]:
    """Migrate, start the relay and the collector, serve the app over ASGI; stop them after.

    `settings_updates` replace parts of IngestSettings: with an API's token (`hubspot`,
    `outreach`: a local server's URL), the lookup worker runs too.
    """
    settings = ingest_settings(infra.settings(outbox=OutboxSettings(poll_seconds=0.2)))
    settings = settings.model_copy(
        update={"ingest": options or IngestOptions(), **settings_updates}
    )
    await migrate(settings=settings.database, schema=SCHEMA, script_location=MIGRATIONS)
    service = build_service(settings, sources=parse_sources(sources, environ={}, production=False))
    collector = EventCollector(infra.bootstrap_servers)
    await collector.start()
    transport = httpx.ASGITransport(app=service.app)
    lookups = [w for w in service.infra.workers if isinstance(w, LookupWorker)]
    try:
        # The relay (and lookups): the retention worker's purges are tested on their own.
        async with (
            running(service.infra, workers=[service.infra.relay, *lookups]),
            httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as client,
        ):
            yield IngestHarness(client, service.context, service.infra.sessions, collector)
    finally:
        await collector.stop()
