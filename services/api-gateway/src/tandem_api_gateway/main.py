"""Composition root of the API gateway service: wires settings, clients and handlers."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.adapters import key_store
from tandem_api_gateway.adapters.projection_store import projection_group
from tandem_api_gateway.api.context import Gateway
from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain.api_keys import generate_api_key, hash_api_key, key_id_of
from tandem_api_gateway.domain.authz import Role
from tandem_api_gateway.feed import FeedListener
from tandem_api_gateway.projections import Projector
from tandem_api_gateway.rebuild import rebuild
from tandem_api_gateway.retention import RetentionWorker, retain
from tandem_api_gateway.settings import GatewaySettings
from tandem_shared import topics
from tandem_shared.bootstrap import Infra, build_infra, cli, listen_dsn, serve_built
from tandem_shared.consumer import ConsumerLoop
from tandem_shared.db import create_engine, session_factory
from tandem_shared.directory import Directory, load_directory
from tandem_shared.envelope import utcnow
from tandem_shared.service import started
from tandem_shared.settings import Settings

SCHEMA = "api_gateway"
MIGRATIONS = Path(__file__).parent / "migrations"
PROJECTED_TOPICS = tuple(spec.name for spec in topics.DATA_TOPICS)

log = structlog.get_logger(__name__)


def load_people(settings: Settings) -> Directory | None:
    """Return the people directory (maps CRM owner ids to person ids), if configured."""
    path = settings.config_dir / "people.yaml"
    return load_directory(path) if path.exists() else None


def add_projections(infra: Infra, *, group: str = topics.GATEWAY_GROUP) -> ConsumerLoop:
    """Register the consumer that projects every data topic into the read models."""
    # Whatever the group (a rebuild's fresh one), dead letters go to the gateway's one DLQ
    # topic, the one `dlq` reads and deploys create.
    return infra.consumer(
        group=group,
        topics=PROJECTED_TOPICS,
        handler=Projector(directory=load_people(infra.settings)),
        dead_letter_group=topics.GATEWAY_GROUP,
    )


async def seed_demo_keys(
    settings: GatewaySettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Store the dev demo keys (dev only), so the dashboard works out of the box."""
    if not settings.seeds_demo_keys:
        return
    async with sessions() as session, session.begin():
        for demo in settings.gateway.demo_keys:
            await key_store.add_key(
                session,
                key_id=key_id_of(demo.key),
                key_hash=hash_api_key(demo.key, pepper=settings.pepper),
                role=demo.role,
                person_id=demo.person_id,
                label="dev demo key",
                replace=True,
            )
    log.info("dev demo API keys seeded", count=len(settings.gateway.demo_keys))


@dataclass
class GatewayService:
    """The wired service: clients and workers (relay, feed listener, projections), the HTTP app."""

    infra: Infra
    app: FastAPI
    gateway: Gateway
    listener: FeedListener
    projections: ConsumerLoop | None = None  # None until started when its group is stored


def build_service(
    settings: GatewaySettings,
    *,
    group: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    with_relay: bool = True,
) -> GatewayService:
    """Create (not start) the gateway; demo keys are seeded when it starts.

    Without `group`, the projections consume with the group stored in the database (a rebuild
    moves it), so their consumer is added at start, once that group has been read.
    """
    infra = build_infra(settings, schema=SCHEMA, with_relay=with_relay)
    gateway = Gateway(
        settings=settings, sessions=infra.sessions, clock=clock, directory=load_people(settings)
    )
    listener = FeedListener(dsn=listen_dsn(settings.database.url), feed=gateway.feed)
    infra.workers.append(listener)
    infra.workers.append(RetentionWorker(infra.sessions, settings.gateway))
    app = create_app(gateway=gateway, runtime_getter=lambda: infra.runtime)
    service = GatewayService(infra, app, gateway, listener)
    if group is None:
        infra.on_start(lambda: _add_stored_projections(service))
    else:
        service.projections = add_projections(infra, group=group)
    infra.on_start(lambda: seed_demo_keys(settings, infra.sessions))
    return service


async def _add_stored_projections(service: GatewayService) -> None:
    async with service.infra.sessions() as session:
        group = await projection_group(session, default=topics.GATEWAY_GROUP)
    service.projections = add_projections(service.infra, group=group)


serve = serve_built(GatewaySettings, build_service)


async def _rebuild(settings: GatewaySettings) -> None:
    infra = build_infra(settings, schema=SCHEMA, with_relay=False)
    async with started(infra.producer, infra.engine):
        group = await rebuild(
            sessions=infra.sessions,
            consumer_for=lambda g: add_projections(infra, group=g),
            default_group=topics.GATEWAY_GROUP,
        )
    log.info("read models rebuilt", group=group)


def rebuild_command(settings: Settings, _args: list[str]) -> int:
    """`tandem-api-gateway rebuild`: rebuild every read model from the topics."""
    assert isinstance(settings, GatewaySettings)
    asyncio.run(_rebuild(settings))
    print("read models rebuilt from the topics")  # noqa: T201 - a CLI answer
    return 0


async def _retain(settings: GatewaySettings) -> str:
    engine = create_engine(settings.database, schema=SCHEMA)  # the database only: no producer
    try:
        removed = await retain(session_factory(engine), settings.gateway, now=utcnow())
    finally:
        await engine.dispose()
    return (
        f"removed {removed.timeline} timeline entries older than "
        f"{settings.gateway.keep_timeline_days} days (activity rolled up into activity_days) "
        f"and {removed.deliveries} deliveries older than "
        f"{settings.gateway.keep_deliveries_days} days (counted in delivery_days)"
    )


def retention_command(settings: Settings, _args: list[str]) -> int:
    """`tandem-api-gateway retention`: roll up and remove raw rows past their retention now."""
    assert isinstance(settings, GatewaySettings)
    print(asyncio.run(_retain(settings)))  # noqa: T201 - a CLI answer
    return 0


async def _create_key(settings: GatewaySettings, *, role: Role, person_id: str, label: str) -> str:
    infra = build_infra(settings, schema=SCHEMA, with_relay=False)
    issued = generate_api_key(pepper=settings.pepper)
    try:
        async with infra.sessions() as session, session.begin():
            await key_store.add_key(
                session,
                key_id=issued.key_id,
                key_hash=issued.key_hash,
                role=role,
                person_id=person_id,
                label=label,
            )
    finally:
        await infra.engine.dispose()
    return issued.plaintext


def create_key_command(settings: Settings, args: list[str]) -> int:
    """`tandem-api-gateway create-key --role sales --person ava.ae`: print a new key once."""
    assert isinstance(settings, GatewaySettings)
    parser = argparse.ArgumentParser(prog="tandem-api-gateway create-key")
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--person", required=True, help="person id, e.g. ava.ae")
    parser.add_argument("--label", default="", help="what the key is for")
    opts = parser.parse_args(args)
    key = asyncio.run(
        _create_key(settings, role=Role(opts.role), person_id=opts.person, label=opts.label)
    )
    print(key)  # noqa: T201 - shown once, never stored in clear
    print("store it now: it cannot be shown again", file=sys.stderr)  # noqa: T201
    return 0


def keys_command(settings: Settings, _args: list[str]) -> int:
    """`tandem-api-gateway keys`: print the dev demo API keys with their roles (dev only)."""
    assert isinstance(settings, GatewaySettings)
    try:
        table = settings.demo_keys_table()
    except ValueError as exc:
        print(f"refusing: {exc}", file=sys.stderr)  # noqa: T201 - a CLI answer
        return 2
    print(table)  # noqa: T201 - deterministic dev-only keys, never secrets
    print(  # noqa: T201
        "seeded at `serve` when TANDEM_ENV=dev; use one as `Authorization: Bearer <key>`"
        " or open the dashboard with /?key=<key>",
        file=sys.stderr,
    )
    return 0


def main() -> None:
    """Entry point of `tandem-api-gateway`."""
    cli(
        service="api-gateway",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        serve_fn=serve,
        settings_factory=GatewaySettings,
        group=topics.GATEWAY_GROUP,
        commands={
            "rebuild": rebuild_command,
            "retention": retention_command,
            "create-key": create_key_command,
            "keys": keys_command,
        },
    )
