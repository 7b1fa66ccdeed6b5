"""Alignment metrics over plain facts: the shell maps read-model rows onto the dataclasses below.

Every ratio is None when its denominator is empty. Definitions, targets and thresholds live in
`metric_definitions` (re-exported here) so the API shows each number with its meaning.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tandem_api_gateway.domain.errors import InvalidInput
from tandem_api_gateway.domain.metric_definitions import (
    DEFINITIONS,
    HANDOFF_SUCCESS_RATE,
    JOINT_ACCOUNT_COVERAGE,
    OPEN_SLA_BREACHES,
    SLA_COMPLIANCE,
    Direction,
    Health,
    MetricDefinition,
    Unit,
)
from tandem_shared.events import Signal, Tier

__all__ = [
    "DEFINITIONS",
    "AccountFacts",
    "AlignmentReport",
    "DealFacts",
    "HandoffFacts",
    "Health",
    "HealthVerdict",
    "MetricDefinition",
    "PipelineSegment",
    "Reading",
    "Scope",
    "SlaCompliance",
    "SlaOutcome",
    "Team",
    "TouchTimes",
    "alignment_health",
    "alignment_report",
    "assemble_report",
    "handoff_success_rate",
    "joint_account_coverage",
    "percentile",
    "pipeline_by_tal",
    "sla_compliance",
    "time_to_first_touch",
    "touch_times_order",
]


class Team(StrEnum):
    SALES = "sales"
    MARKETING = "marketing"


class SlaOutcome(StrEnum):
    RUNNING = "running"
    MET = "met"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class Scope:
    """Filters every metric accepts; the period is half-open [start, end)."""

    start: datetime | None = None
    end: datetime | None = None
    tier: Tier | None = None
    team: Team | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidInput("the period's end must be after its start")

    def in_period(self, at: datetime | None) -> bool:
        """Return True when `at` falls in the period (an open bound accepts anything)."""
        if at is None:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def keeps(self, *, tier: Tier, team: Team | None) -> bool:
        """Return True when a fact of this tier and team passes the tier and team filters."""
        return (self.tier is None or tier == self.tier) and (self.team is None or team == self.team)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """An account with the times each team worked it."""

    account_key: str
    tier: Tier
    in_tal: bool
    sales_activity_at: tuple[datetime, ...] = ()  # CRM activities logged by reps
    marketing_activity_at: tuple[datetime, ...] = ()  # engagements recorded at the account


@dataclass(frozen=True, slots=True)
class HandoffFacts:
    """A handoff and its SLA clock, as the read model knows it."""

    handoff_id: str
    tier: Tier
    signal: Signal
    handed_off_at: datetime
    outcome: SlaOutcome = SlaOutcome.RUNNING
    outcome_at: datetime | None = None  # when the clock was met or breached
    first_touch_at: datetime | None = None  # first qualifying follow-up, even after a breach
    team: Team | None = Team.SALES  # the assignee's team


@dataclass(frozen=True, slots=True)
class DealFacts:
    """A deal with what pipeline and win rate need."""

    deal_id: str
    tier: Tier
    in_tal: bool
    created_at: datetime
    amount: float | None = None
    is_closed: bool = False
    is_won: bool = False
    closed_at: datetime | None = None
    team: Team | None = Team.SALES  # the owner's team


@dataclass(frozen=True, slots=True)
class SlaCompliance:
    met: int
    breached: int
    open_breaches: int

    @property
    def rate(self) -> float | None:
        """Return met / (met + breached), or None when no clock resolved."""
        return _ratio(self.met, self.met + self.breached)


@dataclass(frozen=True, slots=True)
class TouchTimes:
    """Time to first touch for one tier and signal (signal None: all signals of the tier)."""

    tier: Tier
    signal: Signal | None
    touched: int
    untouched: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True, slots=True)
class PipelineSegment:
    """Pipeline and win rate of deals inside or outside the TAL."""

    in_tal: bool
    open_deals: int
    open_amount: float
    closed: int
    won: int
    won_amount: float

    @property
    def win_rate(self) -> float | None:
        """Return won / closed, or None when no deal closed."""
        return _ratio(self.won, self.closed)


@dataclass(frozen=True, slots=True)
class Reading:
    """A rated metric's value with its definition and colour."""

    definition: MetricDefinition
    value: float | None
    health: Health


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    health: Health
    reasons: tuple[str, ...]  # one line per metric off target, worst first


@dataclass(frozen=True, slots=True)
class AlignmentReport:
    scope: Scope
    coverage: float | None
    handoff_success: float | None
    sla: SlaCompliance
    first_touch: tuple[TouchTimes, ...]
    in_tal: PipelineSegment
    outside_tal: PipelineSegment
    readings: tuple[Reading, ...]
    health: HealthVerdict


def joint_account_coverage(accounts: Iterable[AccountFacts], *, scope: Scope) -> float | None:
    """Return the share of TAL accounts worked by both teams (or by scope.team) in the period."""
    tal = [a for a in accounts if a.in_tal and (scope.tier is None or a.tier == scope.tier)]
    covered = sum(1 for a in tal if _covered(a, scope))
    return _ratio(covered, len(tal))


def handoff_success_rate(handoffs: Iterable[HandoffFacts], *, scope: Scope) -> float | None:
    """Return met / (met + breached) over handoffs handed off in the period."""
    cohort = [
        h
        for h in handoffs
        if _keeps_handoff(h, scope)
        and scope.in_period(h.handed_off_at)
        and h.outcome is not SlaOutcome.RUNNING
    ]
    met = sum(1 for h in cohort if h.outcome is SlaOutcome.MET)
    return _ratio(met, len(cohort))


def sla_compliance(handoffs: Iterable[HandoffFacts], *, scope: Scope) -> SlaCompliance:
    """Count SLA verdicts reached in the period and breaches still without a follow-up."""
    resolved = [
        h
        for h in handoffs
        if _keeps_handoff(h, scope)
        and h.outcome is not SlaOutcome.RUNNING
        and scope.in_period(h.outcome_at)
    ]
    breached = [h for h in resolved if h.outcome is SlaOutcome.BREACHED]
    return SlaCompliance(
        met=len(resolved) - len(breached),
        breached=len(breached),
        open_breaches=sum(1 for h in breached if h.first_touch_at is None),
    )


def time_to_first_touch(
    handoffs: Iterable[HandoffFacts], *, scope: Scope
) -> tuple[TouchTimes, ...]:
    """Return median and p90 time to first touch per tier and signal, plus per tier overall."""
    groups: dict[tuple[Tier, Signal | None], list[HandoffFacts]] = {}
    for h in handoffs:
        if _keeps_handoff(h, scope) and scope.in_period(h.handed_off_at):
            groups.setdefault((h.tier, h.signal), []).append(h)
            groups.setdefault((h.tier, None), []).append(h)
    keys = sorted(groups, key=touch_times_order)
    return tuple(_touch_times(tier, signal, groups[tier, signal]) for tier, signal in keys)


def pipeline_by_tal(
    deals: Iterable[DealFacts], *, scope: Scope
) -> tuple[PipelineSegment, PipelineSegment]:
    """Return pipeline and win rate inside the TAL and outside it."""
    kept = [d for d in deals if scope.keeps(tier=d.tier, team=d.team)]
    return (
        _segment([d for d in kept if d.in_tal], in_tal=True, scope=scope),
        _segment([d for d in kept if not d.in_tal], in_tal=False, scope=scope),
    )


def alignment_health(readings: Iterable[Reading]) -> HealthVerdict:
    """Return red if any rated metric is red, yellow if any misses its target, else green."""
    rated = [r for r in readings if r.definition.rated and r.health is not Health.UNKNOWN]
    if not rated:
        return HealthVerdict(health=Health.UNKNOWN, reasons=("no rated metric has data in scope",))
    red = [r for r in rated if r.health is Health.RED]
    yellow = [r for r in rated if r.health is Health.YELLOW]
    reasons = tuple(_reason(r) for r in (*red, *yellow))
    if red:
        return HealthVerdict(health=Health.RED, reasons=reasons)
    if yellow:
        return HealthVerdict(health=Health.YELLOW, reasons=reasons)
    return HealthVerdict(health=Health.GREEN, reasons=())


def alignment_report(
    *,
    accounts: Iterable[AccountFacts],
    handoffs: Sequence[HandoffFacts],
    deals: Iterable[DealFacts],
    scope: Scope,
) -> AlignmentReport:
    """Compute every alignment metric for the scope and the health verdict over them."""
    in_tal, outside = pipeline_by_tal(deals, scope=scope)
    return assemble_report(
        scope=scope,
        coverage=joint_account_coverage(accounts, scope=scope),
        handoff_success=handoff_success_rate(handoffs, scope=scope),
        sla=sla_compliance(handoffs, scope=scope),
        first_touch=time_to_first_touch(handoffs, scope=scope),
        in_tal=in_tal,
        outside_tal=outside,
    )


def assemble_report(
    *,
    scope: Scope,
    coverage: float | None,
    handoff_success: float | None,
    sla: SlaCompliance,
    first_touch: tuple[TouchTimes, ...],
    in_tal: PipelineSegment,
    outside_tal: PipelineSegment,
) -> AlignmentReport:
    """Rate the metrics' values and give the health verdict over them."""
    readings = tuple(
        Reading(definition=d, value=v, health=d.rate(v))
        for d, v in (
            (JOINT_ACCOUNT_COVERAGE, coverage),
            (HANDOFF_SUCCESS_RATE, handoff_success),
            (SLA_COMPLIANCE, sla.rate),
            (OPEN_SLA_BREACHES, _open_breaches(sla)),
        )
    )
    return AlignmentReport(
        scope=scope,
        coverage=coverage,
        handoff_success=handoff_success,
        sla=sla,
        first_touch=first_touch,
        in_tal=in_tal,
        outside_tal=outside_tal,
        readings=readings,
        health=alignment_health(readings),
    )


def touch_times_order(key: tuple[Tier, Signal | None]) -> tuple[Tier, int]:
    """Return where a (tier, signal) group of time to first touch is listed: by tier, the
    tier's overall group (signal None) first, then signals in declaration order."""
    return key[0], -1 if key[1] is None else _SIGNAL_ORDER[key[1]]


_SIGNAL_ORDER = {s: i for i, s in enumerate(Signal)}


def percentile(values: Sequence[float], pct: int) -> float | None:
    """Return the pct-th percentile (1..99) by linear interpolation, or None for no values."""
    if not 1 <= pct <= 99:
        raise ValueError(f"percentile must be within 1..99, got {pct}")
    if not values:
        return None
    if len(values) == 1:
        # statistics.quantiles needs two points before Python 3.13.
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _open_breaches(sla: SlaCompliance) -> float | None:
    # Zero open breaches out of zero resolved clocks is no evidence of health.
    return float(sla.open_breaches) if sla.met + sla.breached else None


def _covered(account: AccountFacts, scope: Scope) -> bool:
    sales = any(scope.in_period(t) for t in account.sales_activity_at)
    marketing = any(scope.in_period(t) for t in account.marketing_activity_at)
    if scope.team is Team.SALES:
        return sales
    if scope.team is Team.MARKETING:
        return marketing
    return sales and marketing


def _keeps_handoff(handoff: HandoffFacts, scope: Scope) -> bool:
    return scope.keeps(tier=handoff.tier, team=handoff.team)


def _touch_times(tier: Tier, signal: Signal | None, group: list[HandoffFacts]) -> TouchTimes:
    seconds = [
        (h.first_touch_at - h.handed_off_at).total_seconds()
        for h in group
        if h.first_touch_at is not None
    ]
    return TouchTimes(
        tier=tier,
        signal=signal,
        touched=len(seconds),
        untouched=len(group) - len(seconds),
        median_seconds=percentile(seconds, 50),
        p90_seconds=percentile(seconds, 90),
    )


def _segment(deals: list[DealFacts], *, in_tal: bool, scope: Scope) -> PipelineSegment:
    open_deals = [d for d in deals if not d.is_closed and scope.in_period(d.created_at)]
    closed = [d for d in deals if d.is_closed and scope.in_period(d.closed_at)]
    won = [d for d in closed if d.is_won]
    return PipelineSegment(
        in_tal=in_tal,
        open_deals=len(open_deals),
        open_amount=sum(d.amount or 0.0 for d in open_deals),
        closed=len(closed),
        won=len(won),
        won_amount=sum(d.amount or 0.0 for d in won),
    )


def _reason(reading: Reading) -> str:
    d = reading.definition
    higher = d.direction is Direction.HIGHER_IS_BETTER
    side = "below" if higher else "above"
    bound = "its red threshold" if reading.health is Health.RED else "target"
    return f"{d.name} is {side} {bound}: {_show(d, reading.value)} (target {_show(d, d.target)})"


def _show(definition: MetricDefinition, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if definition.unit is Unit.RATIO else f"{value:g}"


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
