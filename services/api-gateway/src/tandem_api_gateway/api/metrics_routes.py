"""`GET /v1/metrics/alignment`: every alignment metric with its definition and health colour."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter
from pydantic import AwareDatetime

from tandem_api_gateway.adapters import metrics_store
from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import GatewayDep
from tandem_api_gateway.api.schemas import ErrorOut, Response
from tandem_api_gateway.domain import metrics as m
from tandem_api_gateway.domain.authz import Operation
from tandem_api_gateway.domain.metric_definitions import HEALTH_RULE
from tandem_shared.events import Signal, Tier

Period = Literal["7d", "30d", "90d", "365d", "all"]
_DAYS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])


class DefinitionOut(Response):
    name: str
    title: str
    description: str
    formula: str
    unit: str
    direction: str
    target: float | None
    red: float | None
    when_empty: str


class ReadingOut(Response):
    name: str
    value: float | None
    health: m.Health


class TouchTimesOut(Response):
    tier: Tier
    signal: Signal | None
    touched: int
    untouched: int
    median_seconds: float | None
    p90_seconds: float | None


class SegmentOut(Response):
    in_tal: bool
    open_deals: int
    open_amount: float
    closed: int
    won: int
    won_amount: float
    win_rate: float | None


class ScopeOut(Response):
    start: datetime | None
    end: datetime | None
    tier: Tier | None
    team: m.Team | None


class AlignmentOut(Response):
    scope: ScopeOut
    health: m.Health
    health_reasons: list[str]
    health_rule: str
    readings: list[ReadingOut]
    sla_met: int
    sla_breached: int
    open_breaches: int
    time_to_first_touch: list[TouchTimesOut]
    pipeline_in_tal: SegmentOut
    pipeline_outside_tal: SegmentOut
    definitions: list[DefinitionOut]


@router.get(
    "/alignment",
    responses={code: {"model": ErrorOut} for code in (401, 403, 422, 429)},
)
async def alignment(
    gateway: GatewayDep,
    principal: PrincipalDep,
    period: Period = "30d",
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    tier: Tier | None = None,
    team: m.Team | None = None,
) -> AlignmentOut:
    """Return the alignment metrics for a period (or start/end), tier and team."""
    require(principal, Operation.READ_METRICS)
    now = gateway.clock()
    if start is None and period != "all":
        start = (end or now) - timedelta(days=_DAYS[period])
    scope = m.Scope(start=start, end=end, tier=tier, team=team)
    return _out(await metrics_store.alignment_report(gateway.sessions, scope))


def _out(report: m.AlignmentReport) -> AlignmentOut:
    def segment(s: m.PipelineSegment) -> SegmentOut:
        return SegmentOut(
            in_tal=s.in_tal,
            open_deals=s.open_deals,
            open_amount=s.open_amount,
            closed=s.closed,
            won=s.won,
            won_amount=s.won_amount,
            win_rate=s.win_rate,
        )

    scope = report.scope
    return AlignmentOut(
        scope=ScopeOut(start=scope.start, end=scope.end, tier=scope.tier, team=scope.team),
        health=report.health.health,
        health_reasons=list(report.health.reasons),
        health_rule=HEALTH_RULE,
        readings=[
            ReadingOut(name=r.definition.name, value=r.value, health=r.health)
            for r in report.readings
        ],
        sla_met=report.sla.met,
        sla_breached=report.sla.breached,
        open_breaches=report.sla.open_breaches,
        time_to_first_touch=[
            TouchTimesOut(
                tier=t.tier,
                signal=t.signal,
                touched=t.touched,
                untouched=t.untouched,
                median_seconds=t.median_seconds,
                p90_seconds=t.p90_seconds,
            )
            for t in report.first_touch
        ],
        pipeline_in_tal=segment(report.in_tal),
        pipeline_outside_tal=segment(report.outside_tal),
        definitions=[
            DefinitionOut(
                name=d.name,
                title=d.title,
                description=d.description,
                formula=d.formula,
                unit=d.unit.value,
                direction=d.direction.value,
                target=d.target,
                red=d.red,
                when_empty=d.when_empty,
            )
            for d in m.DEFINITIONS
        ],
    )
