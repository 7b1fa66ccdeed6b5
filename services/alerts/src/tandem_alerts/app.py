"""The Alerts HTTP application."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI

from tandem_shared.service import Runtime, answer_unavailable_with_503, ops_router
from tandem_shared.telemetry import http_telemetry


def create_app(
    *, runtime_getter: Callable[[], Runtime | None], routers: tuple[APIRouter, ...] = ()
) -> FastAPI:
    """Create the Alerts application: ops routes plus the service's own (Slack interactivity)."""
    app = FastAPI(title="Tandem Alerts", version="0.1.0", telemetry=http_telemetry())
    app.include_router(ops_router(runtime_getter))
    answer_unavailable_with_503(app)
    for router in routers:
        app.include_router(router)
    return app
