"""The webhook hot path's database access: one prepared statement per webhook, on asyncpg.

A webhook is one statement (archive row, dedupe claims and outbox rows; see repository), run on
an asyncpg pool of its own rather than through SQLAlchemy: the statement's SQL and types are still
SQLAlchemy's, compiled once for asyncpg, but executing it directly costs about a third of the CPU
(no greenlet hop, cursor adaptation or per-item type processing), and a webhook is the one
request vendors send by the thousand per second. Autocommit: the statement commits by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from tandem_ingest.adapters.repository import RECORD_DELIVERY, ArchivedPayload, delivery_params
from tandem_ingest.domain.normalized import Lookup, NormalizedEvent
from tandem_shared.bootstrap import listen_dsn
from tandem_shared.settings import DatabaseSettings

# What pg_stat_activity shows for these connections.
APPLICATION = "tandem-ingest-webhooks"


@functools.cache
def _record_delivery_statement() -> tuple[str, tuple[str, ...]]:
    """The statement as asyncpg runs it ($n placeholders, typed) and its parameters' order."""
    dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
    compiled = RECORD_DELIVERY.compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ())


async def _keep_session(_: asyncpg.Connection) -> None:
    # The default reset is a round trip per release (RESET ALL, UNLISTEN *, ...): a webhook's
    # one autocommit statement leaves no session state to reset.
    return


class WebhookStore:
    """Records webhooks on a fixed number of connections; waiting requests are served in order."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # As many slots as connections, so requests beyond them queue here in arrival order:
        # a pool hands a returned connection to whoever asks first, so under a burst a waiting
        # request could be overtaken again and again, which made the latency tail.
        self.slots = asyncio.Semaphore(pool.get_max_size())

    @classmethod
    def create(cls, settings: DatabaseSettings, *, schema: str) -> WebhookStore:
        """A store whose pool is made, not started: `start` it, then `close` it.

        Make it in the loop that will use it (asyncpg binds a pool to the current loop). Its
        connections open on first use (the database may start after us); a connection that died
        with the database fails one request, which the vendor retries, and the pool replaces it.
        """
        pool = asyncpg.create_pool(
            listen_dsn(settings.url),
            min_size=0,
            max_size=settings.pool_size,
            server_settings={"search_path": f"{schema},public", "application_name": APPLICATION},
            reset=_keep_session,
        )
        return cls(pool)

    async def start(self) -> None:
        """Start the pool (no connection is opened yet)."""
        await self._pool

    async def close(self) -> None:
        """Close the pool's connections."""
        await self._pool.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: DatabaseSettings, *, schema: str) -> AsyncIterator[WebhookStore]:
        """A started store, closed on the way out."""
        store = cls.create(settings, schema=schema)
        await store.start()
        try:
            yield store
        finally:
            await store.close()

    @property
    def connections(self) -> int:
        """How many connections are open now (a dropped one is noticed and closed)."""
        return int(self._pool.get_size())

    async def record_delivery(
        self,
        payload: ArchivedPayload,
        events: Sequence[NormalizedEvent],
        *,
        counted: bool,
        lookups: Sequence[Lookup] = (),
    ) -> int:
        """Archive a webhook, outbox its events and queue its lookups not seen before,
        atomically; return how many were new.

        With `counted`, the archived result's published and duplicates counts are filled in.
        """
        sql, order = _record_delivery_statement()
        params = delivery_params(payload, events, counted=counted, lookups=lookups)
        async with self.slots, self._pool.acquire() as connection:
            claimed = await connection.fetchval(sql, *[params[name] for name in order])
        return int(claimed)
