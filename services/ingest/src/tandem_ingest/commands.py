"""The ingest service's commands: `replay` and `purge` (run by `tandem-ingest <command>`)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta

from tandem_ingest.config import load_sources
from tandem_ingest.domain.sources import Source
from tandem_ingest.maintenance import PurgeCounts, ReplayCounts, purge, replay
from tandem_ingest.settings import IngestSettings
from tandem_shared.db import create_engine, session_factory
from tandem_shared.settings import Settings

SCHEMA = "ingest"


def ingest_settings(settings: Settings) -> IngestSettings:
    """Return the settings as the ingest service's (the CLI may hand over the shared ones)."""
    if isinstance(settings, IngestSettings):
        return settings
    return IngestSettings.model_validate(settings.model_dump())


def utc_now() -> datetime:
    """Return the current instant (the service's clock)."""
    return datetime.now(UTC)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def replay_command(settings: Settings, argv: list[str]) -> int:
    """`tandem-ingest replay --source S --from ISO --to ISO`: re-publish archived events."""
    parser = argparse.ArgumentParser(prog="tandem-ingest replay")
    parser.add_argument("--source", required=True)
    parser.add_argument("--from", dest="start", required=True, type=_instant)
    parser.add_argument("--to", dest="end", required=True, type=_instant)
    args = parser.parse_args(argv)
    options = ingest_settings(settings)
    sources = load_sources(options)
    if args.source not in sources:
        parser.error(f"unknown source {args.source!r}; known: {', '.join(sorted(sources))}")
    counts = asyncio.run(_replay(options, sources[args.source], args.start, args.end))
    print(  # noqa: T201 - a command's report
        f"replayed {args.source} [{args.start.isoformat()}, {args.end.isoformat()}): "
        f"{counts.payloads} payloads, {counts.events} events, {counts.republished} outboxed "
        f"({counts.first_seen} never published before), {counts.element_errors} element errors, "
        f"{counts.unusable_payloads} unusable payloads"
    )
    return 0


async def _replay(
    settings: IngestSettings, source: Source, start: datetime, end: datetime
) -> ReplayCounts:
    engine = create_engine(settings.database, schema=SCHEMA)
    try:
        return await replay(
            session_factory(engine),
            source=source,
            start=start,
            end=end,
            page_size=settings.ingest.replay_batch_payloads,
            batch_events=settings.ingest.upload_batch_events,
        )
    finally:
        await engine.dispose()


def purge_command(settings: Settings, argv: list[str]) -> int:
    """`tandem-ingest purge`: delete raw payloads older than TANDEM_INGEST__RAW_RETENTION_DAYS."""
    argparse.ArgumentParser(prog="tandem-ingest purge").parse_args(argv)
    options = ingest_settings(settings)
    counts = asyncio.run(_purge(options))
    print(  # noqa: T201 - a command's report
        f"purged {counts.payloads} raw payloads and {counts.dedupe_keys} dedupe keys older than "
        f"{options.ingest.raw_retention_days:g} days"
    )
    return 0


async def _purge(settings: IngestSettings) -> PurgeCounts:
    engine = create_engine(settings.database, schema=SCHEMA)
    try:
        cutoff = utc_now() - timedelta(days=settings.ingest.raw_retention_days)
        return await purge(
            session_factory(engine), older_than=cutoff, batch_rows=settings.ingest.purge_batch_rows
        )
    finally:
        await engine.dispose()
