"""Composition root of the Router service: wires settings, clients and handlers."""

from __future__ import annotations

from pathlib import Path

import structlog

from tandem_router import commands
from tandem_router.adapters import repository
from tandem_router.app import create_app
from tandem_router.config import SCHEMA, load_config, load_seeds
from tandem_router.domain.model import AccountState
from tandem_router.handlers import TOPICS, build_handler
from tandem_shared import topics
from tandem_shared.bootstrap import Infra, build_infra, cli, run
from tandem_shared.settings import Settings
from tandem_shared.topics import ROUTER_GROUP

MIGRATIONS = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)


async def seed(infra: Infra, states: list[AccountState]) -> None:
    """Fill an empty router with the seed accounts; accounts it already knows are left alone."""
    async with infra.sessions.begin() as session:
        added = await repository.seed_accounts(session, states)
    log.info("seed accounts", added=added, known=len(states) - added)


async def serve(settings: Settings) -> None:
    """Validate the configuration, build the service and run it until a stop signal."""
    # Refuses to start (ConfigError lists every problem) before anything connects.
    config = load_config(settings.config_dir)
    seeds = load_seeds(settings.config_dir, config.directory)
    infra = build_infra(settings, schema=SCHEMA)
    infra.consumer(group=ROUTER_GROUP, topics=TOPICS, handler=build_handler(config))
    await seed(infra, seeds)
    app = create_app(runtime_getter=lambda: infra.runtime, sessions=infra.sessions)
    await run(infra, app)


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
