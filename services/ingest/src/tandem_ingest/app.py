"""The Ingest HTTP application."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from tandem_ingest.api import IngestContext, ingest_router
from tandem_shared.service import Runtime, answer_unavailable_with_503, ops_router
from tandem_shared.telemetry import http_telemetry


def create_app(*, runtime_getter: Callable[[], Runtime | None], ingest: IngestContext) -> FastAPI:
    """Create the Ingest application: vendor routes plus health, readiness and metrics."""
    app = FastAPI(title="Tandem Ingest", version="0.1.0", telemetry=http_telemetry())
    app.include_router(ops_router(runtime_getter))
    answer_unavailable_with_503(app)
    app.include_router(ingest_router(ingest))
    return app
