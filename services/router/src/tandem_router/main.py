"""Composition root of the Router service: wires settings, clients and handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from fastapi import FastAPI

from tandem_router import commands
from tandem_router.action_handlers import on_action_requested, on_availability_changed
from tandem_router.adapters import repository
from tandem_router.app import create_app
from tandem_router.config import SCHEMA, RouterConfig, load_config, load_seeds
from tandem_router.domain.model import AccountState
from tandem_router.handlers import TOPICS, build_handler
from tandem_shared import topics
from tandem_shared.accounts import load_public_suffixes
from tandem_shared.bootstrap import Infra, build_infra, cli, serve_built
from tandem_shared.consumer import Handler
from tandem_shared.events import EventType
from tandem_shared.settings import Settings
from tandem_shared.topics import ROUTER_GROUP

MIGRATIONS = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)


@dataclass
class RouterService:
    """The wired service: clients and workers (consumer, relay), the HTTP app and its config."""

    infra: Infra
    app: FastAPI
    config: RouterConfig


def build_service(
    settings: Settings,
    *,
    config: RouterConfig | None = None,
    schema: str = SCHEMA,
    group: str = ROUTER_GROUP,
    wrap_handler: Callable[[Handler], Handler] | None = None,
) -> RouterService:
    """Create (not start) the router; its seed accounts go in when it starts.

    Loading the configuration first refuses to start (ConfigError lists every problem) before
    anything connects. `wrap_handler` lets a harness observe or filter what the router handles.
    """
    config = config or load_config(settings.config_dir)
    seeds = load_seeds(settings.config_dir, config.directory)
    infra = build_infra(settings, schema=schema)
    # Actions on handoffs: the router, owner of assignments, is where they are decided.
    handler = build_handler(
        config,
        extra={
            EventType.HANDOFF_ACTION_REQUESTED: on_action_requested,
            EventType.AVAILABILITY_CHANGED: on_availability_changed,
        },
    )
    infra.consumer(
        group=group, topics=TOPICS, handler=wrap_handler(handler) if wrap_handler else handler
    )
    infra.on_start(lambda: seed(infra, seeds))
    infra.on_start(_warm)
    app = create_app(runtime_getter=lambda: infra.runtime, sessions=infra.sessions)
    return RouterService(infra=infra, app=app, config=config)


async def seed(infra: Infra, states: list[AccountState]) -> None:
    """Fill an empty router with the seed accounts; accounts it already knows are left alone."""
    async with infra.sessions.begin() as session:
        added = await repository.seed_accounts(session, states)
    log.info("seed accounts", added=added, known=len(states) - added)


async def _warm() -> None:
    # What the first events would otherwise load: matching reads the public-suffix rules.
    load_public_suffixes()


serve = serve_built(Settings, build_service)


def main() -> None:
    """Entry point of `tandem-router`."""
    cli(
        group=topics.ROUTER_GROUP,
        service="router",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        serve_fn=serve,
        commands={"check": commands.check, "what-if": commands.what_if_command},
    )
