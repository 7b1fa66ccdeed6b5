"""Composition root of the Ingest service: wires settings, clients and handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from tandem_ingest.adapters.webhook_store import WebhookStore
from tandem_ingest.api import IngestContext
from tandem_ingest.app import create_app
from tandem_ingest.commands import (
    SCHEMA,
    purge_command,
    replay_command,
    utc_now,
)
from tandem_ingest.config import load_sources
from tandem_ingest.domain.sources import Source
from tandem_ingest.maintenance import RetentionWorker
from tandem_ingest.settings import IngestSettings
from tandem_shared.bootstrap import Infra, build_infra, cli, serve_built

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class IngestService:
    """The wired service: clients and workers (relay, retention), the HTTP app and its context."""

    infra: Infra
    app: FastAPI
    context: IngestContext
    webhooks: WebhookStore  # the hot path's own asyncpg pool, started and closed with the service


def build_service(
    settings: IngestSettings, *, sources: Mapping[str, Source] | None = None
) -> IngestService:
    """Create (not start) the service; unusable sources are refused here, before connecting.

    Call it in the loop that will run the service (the webhook pool binds to it).
    """
    context_sources = load_sources(settings) if sources is None else sources
    infra = build_infra(settings, schema=SCHEMA)
    webhooks = WebhookStore.create(settings.database, schema=SCHEMA)
    infra.on_start(webhooks.start, stop=webhooks.close)
    context = IngestContext(
        sources=context_sources, sessions=infra.sessions, options=settings.ingest, webhooks=webhooks
    )
    infra.workers.append(
        RetentionWorker(sessions=infra.sessions, options=settings.ingest, clock=utc_now)
    )
    app = create_app(runtime_getter=lambda: infra.runtime, ingest=context)
    return IngestService(infra, app, context, webhooks)


serve = serve_built(IngestSettings, build_service)


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
