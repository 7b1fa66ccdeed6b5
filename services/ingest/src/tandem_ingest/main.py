"""Composition root of the Ingest service: wires settings, clients and handlers."""

from __future__ import annotations

from pathlib import Path

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
from tandem_shared.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_context(settings: IngestSettings, infra: Infra) -> IngestContext:
    """Load the sources and wire the endpoints' context (refuses unusable sources)."""
    return IngestContext(
        sources=load_sources(settings), sessions=infra.sessions, options=settings.ingest
    )


async def serve(settings: Settings) -> None:
    """Build the service and run it until a stop signal."""
    options = ingest_settings(settings)
    infra = build_infra(options, schema=SCHEMA)
    context = build_context(options, infra)
    infra.workers.append(
        RetentionWorker(sessions=infra.sessions, options=options.ingest, clock=utc_now)
    )
    app = create_app(runtime_getter=lambda: infra.runtime, ingest=context)
    await run(infra, app)


def main() -> None:
    """Entry point of `tandem-ingest`."""
    cli(
        service="ingest",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        serve_fn=serve,
        settings_factory=IngestSettings,
        commands={"replay": replay_command, "purge": purge_command},
    )
