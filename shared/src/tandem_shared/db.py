"""Database helpers: the async engine, one schema per service, Alembic migrations per service."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from tandem_shared.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings, *, schema: str) -> AsyncEngine:
    """Create the service's engine; its connections see its own schema first."""
    return create_async_engine(
        settings.url,
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        echo=settings.echo,
        connect_args={"server_settings": {"search_path": f"{schema},public"}},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    """Return the session factory units of work open sessions from."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(*, script_location: Path, url: str, schema: str) -> Config:
    """Build the Alembic configuration of one service's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


async def migrate(*, settings: DatabaseSettings, schema: str, script_location: Path) -> None:
    """Create the service's schema if needed and upgrade it to the newest revision."""
    engine = create_async_engine(settings.url)
    try:
        async with engine.begin() as conn:
            # CREATE SCHEMA needs database-level rights even when the schema exists: a DBA may
            # have created it for a role that has none.
            exists = await conn.scalar(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            )
            if not exists:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await engine.dispose()
    cfg = alembic_config(script_location=script_location, url=settings.url, schema=schema)
    # Alembic's env runs its own event loop: keep it off ours.
    await asyncio.to_thread(command.upgrade, cfg, "head")
