"""The Router HTTP application."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_router.api import decisions_router
from tandem_shared.service import Runtime, answer_unavailable_with_503, ops_router
from tandem_shared.telemetry import http_telemetry


def create_app(
    *,
    runtime_getter: Callable[[], Runtime | None],
    sessions: async_sessionmaker[AsyncSession],
) -> FastAPI:
    """Create the Router application."""
    app = FastAPI(title="Tandem Router", version="0.1.0", telemetry=http_telemetry())
    app.include_router(ops_router(runtime_getter))
    answer_unavailable_with_503(app)
    app.include_router(decisions_router(sessions))
    return app
