"""Composition root of the Ingest service: wires settings, clients and handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
from fastapi import FastAPI

from tandem_ingest.adapters.hubspot_api import HubSpotApi
from tandem_ingest.adapters.outreach_api import OutreachApi
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
from tandem_ingest.domain.outreach import OutreachConfig
from tandem_ingest.domain.sources import Source, SourcesError
from tandem_ingest.lookup_worker import LookupWorker
from tandem_ingest.maintenance import RetentionWorker
from tandem_ingest.resolvers import HubSpotResolver, OutreachResolver, Resolver
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
    context_sources = load_sources(settings) if sources is None else sources
    resolvers = _resolvers(settings, context_sources)
    context_sources = without_fetching(
        context_sources, set(resolvers), production=settings.env is PROD
    )
    infra = build_infra(settings, schema=SCHEMA)
    webhooks = WebhookStore.create(settings.database, schema=SCHEMA)
    infra.on_start(webhooks.start, stop=webhooks.close)
    context = IngestContext(
        sources=context_sources, sessions=infra.sessions, options=settings.ingest, webhooks=webhooks
    )
    infra.workers.append(
        RetentionWorker(sessions=infra.sessions, options=settings.ingest, clock=utc_now)
    )
    if resolvers:
        lookups = LookupWorker(
            sessions=infra.sessions, resolvers=resolvers, options=settings.lookups
        )
        infra.on_start(_nothing, stop=lookups.close)
        infra.workers.append(lookups)
        context.on_deferred = lookups.wake  # a webhook queued lookups: fetch them now
    app = create_app(runtime_getter=lambda: infra.runtime, ingest=context)
    return IngestService(infra, app, context, webhooks)


async def _nothing() -> None:
    return


def _resolvers(settings: IngestSettings, sources: Mapping[str, Source]) -> dict[str, Resolver]:
    """The vendors' API clients whose tokens are set (lookups of the others are not made)."""
    resolvers: dict[str, Resolver] = {}
    if (token := settings.hubspot_token()) is not None:
        options = settings.hubspot
        api = HubSpotApi.create(
            base_url=options.base_url, token=token, timeout=options.timeout_seconds
        )
        resolvers["hubspot"] = HubSpotResolver(api, sources)
    if (token := settings.outreach_token()) is not None:
        outreach = settings.outreach
        client = OutreachApi.create(
            base_url=outreach.base_url, token=token, timeout=outreach.timeout_seconds
        )
        resolvers["outreach"] = OutreachResolver(client)
    return resolvers


_TOKENS = {"hubspot": "TANDEM_HUBSPOT__ACCESS_TOKEN", "outreach": "TANDEM_OUTREACH__ACCESS_TOKEN"}


def without_fetching(
    sources: Mapping[str, Source], configured: set[str], *, production: bool
) -> dict[str, Source]:
    """Turn off API lookups of sources whose vendor has no token set (refused in prod)."""
    wanting = {
        name: source.kind.value
        for name, source in sources.items()
        if isinstance(source.config, HubSpotConfig | OutreachConfig)
        and source.config.fetch_records
        and source.kind.value not in configured
    }
    if wanting and production:
        needed = ", ".join(sorted({_TOKENS[kind] for kind in wanting.values()}))
        raise SourcesError(
            f"source(s) {', '.join(sorted(wanting))} fetch records from their vendor's API: set "
            f"{needed}, or `fetch_records: false` in their config"
        )
    for name, kind in wanting.items():
        log.warning("no API token: records are not fetched", source=name, token=_TOKENS[kind])
    return {
        name: replace(source, config=source.config.model_copy(update={"fetch_records": False}))
        if name in wanting and isinstance(source.config, HubSpotConfig | OutreachConfig)
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
