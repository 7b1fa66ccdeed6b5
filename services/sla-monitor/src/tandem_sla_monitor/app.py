"""The SLA monitor HTTP application: acknowledgements, clocks and SLA metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_shared.directory import Directory
from tandem_shared.service import Runtime, answer_unavailable_with_503, ops_router
from tandem_shared.telemetry import http_telemetry
from tandem_shared.uow import unit_of_work
from tandem_sla_monitor.adapters import repository as repo
from tandem_sla_monitor.domain.metrics import SlaMetrics, sla_metrics
from tandem_sla_monitor.domain.views import ClockView, clock_view
from tandem_sla_monitor.handlers import acknowledge_handoff
from tandem_sla_monitor.publishing import emission_rows


class AcknowledgeRequest(BaseModel):
    person_id: str = Field(min_length=1)


@dataclass(frozen=True)
class ApiDeps:
    """What the endpoints need: sessions, the directory and the clock."""

    sessions: async_sessionmaker[AsyncSession]
    directory: Directory
    now: Callable[[], datetime]
    metrics_window_days: int = 30


def sla_router(deps: ApiDeps) -> APIRouter:
    """The SLA monitor's own endpoints."""
    router = APIRouter(prefix="/v1", tags=["sla"])

    @router.post("/handoffs/{handoff_id}/acknowledge")
    async def acknowledge(handoff_id: str, body: AcknowledgeRequest) -> ClockView:
        """Record that someone took the handoff in hand: escalation pauses, the clock runs on."""
        if deps.directory.get(body.person_id) is None:
            raise HTTPException(422, f"unknown person {body.person_id!r}")
        now = deps.now()
        async with unit_of_work(deps.sessions) as uow:
            result = await acknowledge_handoff(
                uow.session, handoff_id=handoff_id, person_id=body.person_id, at=now
            )
            if result is None:
                raise HTTPException(404, f"no clock for handoff {handoff_id!r}")
            clock, emitted = result
            uow.emit_rows(emission_rows(emitted))
        return clock_view(clock, now=now)

    @router.get("/clocks/{handoff_id}")
    async def get_clock(handoff_id: str) -> ClockView:
        """Return a handoff's clock and the time it has left."""
        async with deps.sessions() as session:
            stored = await repo.get_clock(session, handoff_id)
        if stored is None:
            raise HTTPException(404, f"no clock for handoff {handoff_id!r}")
        return clock_view(stored.clock, now=deps.now())

    @router.get("/metrics/sla")
    async def metrics(
        since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
    ) -> SlaMetrics:
        """Return SLA outcomes of the clocks started in [since, until), by tier and signal."""
        now = deps.now()
        until = until or now
        since = since or until - timedelta(days=deps.metrics_window_days)
        if since.tzinfo is None or until.tzinfo is None:
            raise HTTPException(422, "since and until need a time zone")
        async with deps.sessions() as session:
            clocks = await repo.clocks_started_between(session, since=since, until=until)
        return sla_metrics(clocks)

    return router


def create_app(*, runtime_getter: Callable[[], Runtime | None], deps: ApiDeps) -> FastAPI:
    """Create the SLA monitor application."""
    app = FastAPI(title="Tandem SLA monitor", version="0.1.0", telemetry=http_telemetry())
    app.include_router(ops_router(runtime_getter))
    answer_unavailable_with_503(app)
    app.include_router(sla_router(deps))
    return app
