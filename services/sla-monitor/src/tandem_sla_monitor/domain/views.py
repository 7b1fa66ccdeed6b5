"""What the API shows of a clock at a given moment: its state and the time left."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from tandem_shared.events import Signal, Tier
from tandem_sla_monitor.domain.business_time import business_seconds_between
from tandem_sla_monitor.domain.clock import ClockStatus, SlaClock
from tandem_sla_monitor.domain.policy import Toucher
from tandem_sla_monitor.domain.schedule import FiringKind


class ClockView(BaseModel):
    """A clock's state at `as_of`; the remaining times are None once it was touched."""

    model_config = ConfigDict(frozen=True)

    handoff_id: str
    decision_id: str
    account_key: str | None
    crm_url: str | None
    assignee_id: str
    cover_ids: tuple[str, ...]  # people alerted in the assignee's place
    touched_by: tuple[Toucher, ...]  # whose touch stops this clock (its policy terms)
    tier: Tier
    signal: Signal
    policy_version: str
    status: ClockStatus
    started_at: datetime
    warning_at: datetime
    deadline: datetime
    allowed_business_seconds: int
    elapsed_business_seconds: int
    remaining_business_seconds: int | None  # 0 once the deadline passed
    remaining_wall_seconds: float | None  # negative once the deadline passed
    warned: bool
    escalation_level: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    unowned_since: datetime | None  # stopped: nobody owns the handoff
    touched_at: datetime | None
    touch_business_seconds: int | None
    next_due_at: datetime | None
    next_kind: FiringKind | None
    as_of: datetime


def clock_view(clock: SlaClock, *, now: datetime) -> ClockView:
    """Return the clock as seen at `now`."""
    stopped = clock.touched_at or clock.unowned_since  # touched, or nobody owns it
    running = stopped is None
    end = stopped or now
    return ClockView(
        handoff_id=clock.handoff_id,
        decision_id=clock.decision_id,
        account_key=clock.account_key,
        crm_url=clock.crm_url,
        assignee_id=clock.assignee_id,
        cover_ids=clock.cover_ids,
        touched_by=clock.terms.touched_by,
        tier=clock.tier,
        signal=clock.signal,
        policy_version=clock.terms.policy_version,
        status=clock.status,
        started_at=clock.started_at,
        warning_at=clock.warning_at,
        deadline=clock.deadline,
        allowed_business_seconds=clock.terms.allowed_seconds,
        elapsed_business_seconds=business_seconds_between(clock.started_at, end, clock.calendar),
        remaining_business_seconds=(
            business_seconds_between(now, clock.deadline, clock.calendar) if running else None
        ),
        remaining_wall_seconds=(clock.deadline - now).total_seconds() if running else None,
        warned=clock.warned,
        escalation_level=clock.escalation_level,
        acknowledged_at=clock.acknowledged_at,
        acknowledged_by=clock.acknowledged_by,
        unowned_since=clock.unowned_since,
        touched_at=clock.touched_at,
        touch_business_seconds=clock.touch_business_seconds,
        next_due_at=clock.next_due_at,
        next_kind=clock.next_kind,
        as_of=now,
    )
