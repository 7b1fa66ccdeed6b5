"""Composition root of the Ingest service: wires settings, clients and handlers."""

from __future__ import annotations

import gc
from pathlib import Path

from tandem_ingest.adapters.webhook_store import WebhookStore
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


def build_context(settings: IngestSettings, infra: Infra, webhooks: WebhookStore) -> IngestContext:
    """Load the sources and wire the endpoints' context (refuses unusable sources)."""
    return IngestContext(
        sources=load_sources(settings),
        sessions=infra.sessions,
        options=settings.ingest,
        webhooks=webhooks,
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
    async with WebhookStore.open(options.database, schema=SCHEMA) as webhooks:
        context = build_context(options, infra, webhooks)
        infra.workers.append(
            RetentionWorker(sessions=infra.sessions, options=options.ingest, clock=utc_now)
        )
        app = create_app(runtime_getter=lambda: infra.runtime, ingest=context)
        tune_gc()
        await run(infra, app)


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
