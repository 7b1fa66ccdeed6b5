"""The live feed: projection commits reach every replica's SSE subscribers.

Projections call pg_notify inside their transaction, so PostgreSQL delivers the message only
after the commit, and to every replica listening; each replica's `FeedListener` fans it out to
its in-process subscribers. A subscriber too slow to keep up is dropped (its stream ends and the
browser reconnects) rather than holding memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from tandem_api_gateway.adapters.projection_store import FEED_CHANNEL

log = structlog.get_logger(__name__)

FeedMessage = dict[str, Any]
_CLOSED: FeedMessage = {}


@dataclass
class Feed:
    """An in-process broadcaster of feed messages to bounded subscriber queues."""

    queue_size: int = 256
    _subscribers: set[asyncio.Queue[FeedMessage]] = field(default_factory=set)

    def publish(self, message: FeedMessage) -> None:
        """Hand a message to every subscriber; drop those whose queue is full."""
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                queue.get_nowait()  # make room for the end-of-stream marker
                queue.put_nowait(_CLOSED)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[FeedMessage]]:
        """Yield an iterator of messages published from now on, until unsubscribed or dropped."""
        queue: asyncio.Queue[FeedMessage] = asyncio.Queue(maxsize=self.queue_size)
        self._subscribers.add(queue)

        async def messages() -> AsyncIterator[FeedMessage]:
            while (message := await queue.get()) is not _CLOSED:
                yield message

        try:
            yield messages()
        finally:
            self._subscribers.discard(queue)


class FeedListener:
    """A worker holding a LISTEN connection that publishes each notification to the feed."""

    def __init__(self, *, dsn: str, feed: Feed, reconnect_seconds: float = 1.0) -> None:
        self._dsn = dsn
        self._feed = feed
        self._reconnect_seconds = reconnect_seconds
        self._stopping = asyncio.Event()
        self.listening = asyncio.Event()

    def stop(self) -> None:
        """Close the connection and return from run()."""
        self._stopping.set()

    async def run(self) -> None:
        """Listen until stopped, reconnecting after a lost connection."""
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("feed listener cannot connect", error=repr(exc))
                await self._pause()
                continue
            try:
                await self._listen(conn)
            finally:
                self.listening.clear()
                await conn.close()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(FEED_CHANNEL, self._on_notify)
        self.listening.set()
        stop = asyncio.create_task(self._stopping.wait())
        gone = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait([stop, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            gone.cancel()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._feed.publish(json.loads(payload))

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=self._reconnect_seconds)
