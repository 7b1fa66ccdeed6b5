"""Composition root of the Ingest service: wires settings, clients and handlers."""

from __future__ import annotations

import gc
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tandem_ingest.api import IngestContext
from tandem_ingest.app import create_app
from tandem_ingest.commands import (
    SCHEMA,
    ingest_settings,
    purge_command,
    replay_command,
    utc_now,
)
from tandem_ingest.config import load_sources
from tandem_ingest.maintenance import RetentionWorker
from tandem_ingest.settings import IngestSettings
from tandem_shared.bootstrap import Infra, build_infra, cli, run
from tandem_shared.service import use_uvloop
from tandem_shared.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def webhook_engine(settings: IngestSettings) -> AsyncEngine:
    """The hot path's engine: autocommit (a webhook is one statement), no pre-ping, no overflow.

    A connection that died with the database fails one request, which the vendor retries.
    Beyond the pool's connections a request waits for one: overflow connections were closed
    as soon as returned, so a burst opened (and type-introspected) a connection every few
    requests, which made the latency tail and cost CPU on both sides.
    """
    return create_async_engine(
        settings.database.url,
        pool_size=settings.database.pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        echo=settings.database.echo,
        isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": {"search_path": f"{SCHEMA},public"}},
    )


def build_context(settings: IngestSettings, infra: Infra, webhooks: AsyncEngine) -> IngestContext:
    """Load the sources and wire the endpoints' context (refuses unusable sources)."""
    return IngestContext(
        sources=load_sources(settings),
        sessions=infra.sessions,
        options=settings.ingest,
        webhook_engine=webhooks,
    )


def tune_gc() -> None:
    """Collect less often, and never scan start-up objects: GC pauses made the latency tail.

    A webhook allocates many short-lived objects and keeps few, so the default young-generation
    threshold (700) collected every few requests; frozen start-up objects (modules, models, the
    app) are left out of the rare full collections.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def serve(settings: Settings) -> None:
    """Build the service and run it until a stop signal."""
    options = ingest_settings(settings)
    infra = build_infra(options, schema=SCHEMA)
    webhooks = webhook_engine(options)
    context = build_context(options, infra, webhooks)
    infra.workers.append(
        RetentionWorker(sessions=infra.sessions, options=options.ingest, clock=utc_now)
    )
    app = create_app(runtime_getter=lambda: infra.runtime, ingest=context)
    tune_gc()
    try:
        await run(infra, app)
    finally:
        await webhooks.dispose()


def main() -> None:
    """Entry point of `tandem-ingest`."""
    use_uvloop()  # the webhook hot path spends much of its CPU in the event loop and transports
    cli(
        service="ingest",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        serve_fn=serve,
        settings_factory=IngestSettings,
        commands={"replay": replay_command, "purge": purge_command},
    )
