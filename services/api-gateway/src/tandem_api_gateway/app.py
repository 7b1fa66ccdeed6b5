"""The API gateway HTTP application: REST under /v1, the live feed, the dashboard."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from tandem_api_gateway.api import (
    action_routes,
    handoff_routes,
    metrics_routes,
    people_routes,
    read_routes,
    stream_routes,
    tal_routes,
)
from tandem_api_gateway.api.context import Gateway
from tandem_api_gateway.api.errors import install_error_handlers
from tandem_api_gateway.dashboard import router as dashboard_router
from tandem_api_gateway.dashboard import static_files
from tandem_shared.service import Runtime, answer_unavailable_with_503, ops_router
from tandem_shared.telemetry import http_telemetry

DESCRIPTION = """The shared view of marketing and sales: accounts, the TAL workflow, handoffs with
their SLA, alerts with their delivery, and the alignment metrics.

Authenticate with an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""


def create_app(*, gateway: Gateway, runtime_getter: Callable[[], Runtime | None]) -> FastAPI:
    """Create the API gateway application."""
    app = FastAPI(
        title="Tandem API gateway",
        version="0.1.0",
        description=DESCRIPTION,
        telemetry=http_telemetry(),
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    app.include_router(ops_router(runtime_getter))
    answer_unavailable_with_503(app)
    modules = (
        read_routes,
        handoff_routes,
        action_routes,
        people_routes,
        tal_routes,
        metrics_routes,
        stream_routes,
    )
    for module in modules:
        app.include_router(module.router)
    app.include_router(dashboard_router)
    app.mount("/static", static_files, name="static")
    return app
