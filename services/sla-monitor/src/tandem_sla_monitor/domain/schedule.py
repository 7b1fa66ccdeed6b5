"""What a clock fires next: the warning, the breach, then escalation levels and repeats."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from tandem_sla_monitor.domain.business_time import add_business_seconds, business_seconds_between
from tandem_sla_monitor.domain.policy import EscalationStep

if TYPE_CHECKING:
    from tandem_sla_monitor.domain.clock import SlaClock


class FiringKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"


class Firing(BaseModel):
    """One timed firing of a clock; `level` and `repeat` identify an escalation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FiringKind
    due_at: datetime
    level: int = 0  # 1-based escalation level, 0 for the warning and the breach
    repeat: int = 0  # 0 for a level's first firing, then 1, 2, ...


def span_of(firing: Firing | None) -> tuple[str, dict[str, str | int]]:
    """Return the name and attributes of the span a firing runs in (its kind, not its ids)."""
    if firing is None:
        return "sla fire", {}  # a clock only postponed after a failure: nothing is planned
    attributes: dict[str, str | int] = {"tandem.sla.firing": firing.kind.value}
    if firing.kind is FiringKind.ESCALATION:
        attributes |= {"tandem.sla.escalation_level": firing.level}
        attributes |= {"tandem.sla.escalation_repeat": firing.repeat}
    return f"sla fire {firing.kind.value}", attributes


def plan_next(clock: SlaClock) -> Firing | None:
    """Return the clock's next firing, or None once nothing more will fire."""
    if clock.touched_at is not None or clock.unowned_since is not None:
        return None  # touched, or nobody owns the handoff (handoff_policy.ClockEffect.STOP)
    if not clock.warned and not clock.breach_fired:
        return Firing(kind=FiringKind.WARNING, due_at=clock.warning_at)
    if not clock.breach_fired:
        return Firing(kind=FiringKind.BREACH, due_at=clock.deadline)
    escalation = _next_escalation(clock)
    return None if escalation is None else _after_pause(escalation, clock)


def level_start(clock: SlaClock, level: int) -> datetime:
    """Return when a 1-based escalation level starts, in the clock's business time."""
    step = clock.terms.escalation[level - 1]
    return add_business_seconds(clock.deadline, step.after_breach_minutes * 60, clock.calendar)


def _next_escalation(clock: SlaClock) -> Firing | None:
    steps = clock.terms.escalation
    level = clock.escalation_level
    next_level_at = level_start(clock, level + 1) if level < len(steps) else None
    repeat = _next_repeat(clock, steps[level - 1]) if level >= 1 else None
    if repeat is not None and (next_level_at is None or repeat.due_at < next_level_at):
        return repeat
    if next_level_at is None:
        return None
    return Firing(kind=FiringKind.ESCALATION, due_at=next_level_at, level=level + 1)


def _next_repeat(clock: SlaClock, step: EscalationStep) -> Firing | None:
    """Return the level's next reminder on its repeat grid, strictly after the last firing.

    Grid points that passed while nothing fired (downtime, a pause) are covered by the
    firing that caught up, so a late process sends one reminder, not a burst.
    """
    if step.repeat_every_minutes is None or clock.last_escalated_at is None:
        return None
    every = step.repeat_every_minutes * 60
    start = level_start(clock, clock.escalation_level)
    elapsed = business_seconds_between(start, clock.last_escalated_at, clock.calendar)
    index = max(clock.escalation_repeat + 1, elapsed // every + 1)
    if step.max_repeats is not None and index > step.max_repeats:
        return None
    due_at = add_business_seconds(start, index * every, clock.calendar)
    return Firing(
        kind=FiringKind.ESCALATION, due_at=due_at, level=clock.escalation_level, repeat=index
    )


def _after_pause(firing: Firing, clock: SlaClock) -> Firing | None:
    """Defer an escalation that falls inside an acknowledgement's pause to its end."""
    if clock.acknowledged_at is None:
        return firing
    pause = clock.terms.acknowledgement_pause_seconds
    if pause is None:
        return None
    resume_at = add_business_seconds(clock.acknowledged_at, pause, clock.calendar)
    if firing.due_at >= resume_at:
        return firing
    # Resume at the level reached by then; levels the pause hid are not replayed.
    level = firing.level
    while level < len(clock.terms.escalation) and level_start(clock, level + 1) <= resume_at:
        level += 1
    if level == firing.level:
        return firing.model_copy(update={"due_at": resume_at})
    return Firing(kind=FiringKind.ESCALATION, due_at=resume_at, level=level)
