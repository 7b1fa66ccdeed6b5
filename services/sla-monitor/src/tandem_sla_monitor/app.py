"""The SLA monitor HTTP application."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from tandem_shared.service import Runtime, ops_router


def create_app(*, runtime_getter: Callable[[], Runtime | None]) -> FastAPI:
    """Create the SLA monitor application."""
    app = FastAPI(title="Tandem SLA monitor", version="0.1.0")
    app.include_router(ops_router(runtime_getter))
    return app
