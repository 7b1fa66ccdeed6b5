"""Composition root of the Ingest service: wires settings, clients and handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
from fastapi import FastAPI

from tandem_ingest.adapters.hubspot_api import HubSpotApi
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
from tandem_ingest.domain.hubspot import HubSpotConfig
from tandem_ingest.domain.sources import Source, SourcesError
from tandem_ingest.lookup_worker import LookupWorker
from tandem_ingest.maintenance import RetentionWorker
from tandem_ingest.settings import IngestSettings
from tandem_shared.bootstrap import Infra, build_infra, cli, serve_built
from tandem_shared.settings import Environment

MIGRATIONS = Path(__file__).parent / "migrations"
PROD = Environment.PROD
log = structlog.get_logger(__name__)


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
    token = settings.hubspot_token()
    context_sources = load_sources(settings) if sources is None else sources
    if token is None:
        context_sources = without_fetching(context_sources, production=settings.env is PROD)
    infra = build_infra(settings, schema=SCHEMA)
    webhooks = WebhookStore.create(settings.database, schema=SCHEMA)
    infra.on_start(webhooks.start, stop=webhooks.close)
    context = IngestContext(
        sources=context_sources, sessions=infra.sessions, options=settings.ingest, webhooks=webhooks
    )
    infra.workers.append(
        RetentionWorker(sessions=infra.sessions, options=settings.ingest, clock=utc_now)
    )
    if token is not None:
        options = settings.hubspot
        api = HubSpotApi.create(
            base_url=options.base_url, token=token, timeout=options.timeout_seconds
        )
        lookups = LookupWorker(
            sessions=infra.sessions,
            api=api,
            sources=context_sources,
            options=options,
            clock=utc_now,
        )
        infra.on_start(_nothing, stop=api.close)
        infra.workers.append(lookups)
        context.on_deferred = lookups.wake  # a webhook queued lookups: fetch them now
    app = create_app(runtime_getter=lambda: infra.runtime, ingest=context)
    return IngestService(infra, app, context, webhooks)


async def _nothing() -> None:
    return


def without_fetching(sources: Mapping[str, Source], *, production: bool) -> dict[str, Source]:
    """Turn off CRM API lookups of HubSpot sources when no token is set (refused in prod)."""
    wanting = [
        name
        for name, source in sources.items()
        if isinstance(source.config, HubSpotConfig) and source.config.fetch_records
    ]
    if wanting and production:
        raise SourcesError(
            f"HubSpot source(s) {', '.join(wanting)} fetch records from the CRM API: set "
            "TANDEM_HUBSPOT__ACCESS_TOKEN, or `fetch_records: false` in their config"
        )
    for name in wanting:
        log.warning(
            "no TANDEM_HUBSPOT__ACCESS_TOKEN: HubSpot activity and new records are not fetched",
            source=name,
        )
    return {
        name: replace(source, config=source.config.model_copy(update={"fetch_records": False}))
        if name in wanting and isinstance(source.config, HubSpotConfig)
        else source
        for name, source in sources.items()
    }


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
