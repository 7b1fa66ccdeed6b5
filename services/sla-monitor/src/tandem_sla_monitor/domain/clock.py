"""The follow-up clock of one handoff: a pure, serializable state machine."""

from __future__ import annotations

from collections.abc import Iterable, Set
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from tandem_shared.directory import Directory, Person, Role
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    AlertKind,
    EventType,
    RoutingDecided,
    Signal,
    Tier,
)
from tandem_sla_monitor.domain import emissions
from tandem_sla_monitor.domain.business_time import (
    BusinessCalendar,
    add_business_seconds,
    business_seconds_between,
)
from tandem_sla_monitor.domain.emissions import Emission
from tandem_sla_monitor.domain.policy import EscalationTarget, PolicyTerms, SlaPolicy, Toucher
from tandem_sla_monitor.domain.schedule import Firing, FiringKind, plan_next

# Activities that count as a first touch; tasks and notes are bookkeeping, not contact.
TOUCH_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})


class ClockStatus(StrEnum):
    RUNNING = "running"
    MET = "met"  # first touch at or before the deadline
    BREACHED = "breached"  # the deadline passed without a touch (a late touch stays breached)


class SlaClock(BaseModel):
    """One handoff's follow-up clock, with the policy terms and calendar it started under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handoff_id: str
    decision_id: str
    account_key: str | None
    account_name: str | None = None
    contact_email: str | None = None
    crm_url: str | None = None  # the record the handoff is about, for the alerts' CRM link
    assignee_id: str
    cover_ids: tuple[str, ...] = ()  # people alerts reached in the assignee's place
    tier: Tier
    signal: Signal
    started_at: datetime
    terms: PolicyTerms
    calendar: BusinessCalendar
    warning_at: datetime
    deadline: datetime
    status: ClockStatus = ClockStatus.RUNNING
    warned: bool = False
    breach_fired: bool = False
    escalation_level: int = 0  # highest level fired, 0 for none
    escalation_repeat: int = 0  # the repeat index last fired at that level
    last_escalated_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    unowned_since: datetime | None = None  # nobody owns the handoff: stopped until assigned
    touched_at: datetime | None = None
    touched_by_activity_id: str | None = None
    touch_business_seconds: int | None = None
    next_due_at: datetime | None = None
    next_kind: FiringKind | None = None
    next_level: int = 0
    next_repeat: int = 0


def start_clock(
    decision: RoutingDecided, person: Person, policy: SlaPolicy
) -> tuple[SlaClock, list[Emission]]:
    """Start a decision's clock under the policy in force, in the assignee's calendar."""
    if person.id != decision.assignee_id:
        raise ValueError(f"{person.id!r} is not the assignee {decision.assignee_id!r}")
    terms = policy.terms_for(decision.tier, decision.signal)
    calendar = BusinessCalendar.of(person)
    started_at = decision.decided_at
    clock = SlaClock(
        handoff_id=decision.handoff_id,
        decision_id=decision.decision_id,
        account_key=decision.account_key,
        account_name=decision.account_name,
        contact_email=decision.contact_email,
        crm_url=decision.crm_url,
        assignee_id=decision.assignee_id,
        tier=decision.tier,
        signal=decision.signal,
        started_at=started_at,
        terms=terms,
        calendar=calendar,
        warning_at=add_business_seconds(started_at, terms.warning_seconds, calendar),
        deadline=add_business_seconds(started_at, terms.allowed_seconds, calendar),
    )
    started = emissions.sla_event(
        clock, EventType.SLA_STARTED, at=started_at, id_parts=("started",)
    )
    return _rescheduled(clock), [started]


def next_firing(clock: SlaClock) -> Firing | None:
    """Return the clock's next timed firing, or None when nothing more will fire."""
    if clock.next_kind is None or clock.next_due_at is None:
        return None
    return Firing(
        kind=clock.next_kind,
        due_at=clock.next_due_at,
        level=clock.next_level,
        repeat=clock.next_repeat,
    )


def fire(clock: SlaClock, now: datetime, directory: Directory) -> tuple[SlaClock, list[Emission]]:
    """Fire everything due at `now`, in order and once each (catching up after downtime)."""
    emitted: list[Emission] = []
    while (firing := next_firing(clock)) is not None and firing.due_at <= now:
        clock, batch = _apply(clock, firing, now, directory)
        emitted.extend(batch)
    return clock, emitted


def qualifies(
    clock: SlaClock, activity: ActivityLogged, *, team_ids: Set[str], directory: Directory
) -> bool:
    """Return True when the activity is a first touch of this handoff by its people."""
    if activity.kind not in TOUCH_KINDS or activity.occurred_at < clock.started_at:
        return False
    if not _same_account(clock, activity) or activity.actor_id is None:
        return False
    actor = directory.by_crm_user(activity.actor_id)
    return actor is not None and actor.id in touchers(clock, team_ids=team_ids)


def touchers(clock: SlaClock, *, team_ids: Set[str]) -> frozenset[str]:
    """Return the people whose touch stops this clock under its terms (`touched_by`)."""
    allowed = clock.terms.touched_by
    people = {clock.assignee_id}
    if Toucher.COVER in allowed:
        people.update(clock.cover_ids)
    if Toucher.ACCOUNT_TEAM in allowed:
        people.update(team_ids)
    return frozenset(people)


def with_cover(clock: SlaClock, *, cover_id: str, on_behalf_of: str) -> SlaClock:
    """Return the clock knowing that an alert reached `cover_id` in its assignee's place.

    An alert sent on behalf of someone else (a superseded assignee) changes nothing.
    """
    if on_behalf_of != clock.assignee_id or cover_id in clock.cover_ids:
        return clock
    return clock.model_copy(update={"cover_ids": (*clock.cover_ids, cover_id)})


def qualifying_activity(
    clock: SlaClock,
    activities: Iterable[ActivityLogged],
    *,
    team_ids: Set[str],
    directory: Directory,
) -> ActivityLogged | None:
    """Return the earliest activity that touches the handoff (e.g. one stored before the start)."""
    touches = [a for a in activities if qualifies(clock, a, team_ids=team_ids, directory=directory)]
    return min(touches, key=lambda a: a.occurred_at, default=None)


def record_activity(
    clock: SlaClock, activity: ActivityLogged, *, team_ids: Set[str], directory: Directory
) -> tuple[SlaClock, list[Emission]]:
    """Stop the clock at a qualifying activity; an earlier touch arriving late corrects it."""
    if not qualifies(clock, activity, team_ids=team_ids, directory=directory):
        return clock, []
    at = activity.occurred_at
    if clock.touched_at is not None and clock.touched_at <= at:
        return clock, []
    emitted: list[Emission] = []
    if at > clock.deadline and not clock.breach_fired:
        # The deadline passed while nobody fired it: record the breach as a fact, no alert.
        emitted.append(_breach_event(clock))
    touched = clock.model_copy(
        update={
            "status": ClockStatus.MET if at <= clock.deadline else ClockStatus.BREACHED,
            "breach_fired": clock.breach_fired or at > clock.deadline,
            "touched_at": at,
            "touched_by_activity_id": activity.activity_id,
            "touch_business_seconds": business_seconds_between(
                clock.started_at, at, clock.calendar
            ),
        }
    )
    emitted.append(
        emissions.sla_event(
            touched,
            EventType.SLA_MET,
            at=at,
            id_parts=("met", activity.activity_id),
            met_by_activity_id=activity.activity_id,
            within_sla=at <= clock.deadline,
        )
    )
    return _rescheduled(touched), emitted


def acknowledge(clock: SlaClock, person_id: str, at: datetime) -> tuple[SlaClock, list[Emission]]:
    """Record that someone took the handoff in hand: escalation pauses, the clock runs on."""
    if clock.acknowledged_at is not None or clock.touched_at is not None:
        return clock, []
    acknowledged = clock.model_copy(update={"acknowledged_at": at, "acknowledged_by": person_id})
    event = emissions.sla_event(
        acknowledged, EventType.SLA_ACKNOWLEDGED, at=at, id_parts=("acknowledged",)
    )
    return _rescheduled(acknowledged), [event]


def stop_unowned(clock: SlaClock, *, previous_assignee_id: str | None, at: datetime) -> SlaClock:
    """Stop the clock of a handoff nobody owns any more (nothing fires until it is assigned).

    Only the clock of the owner who let it go, started before: a newer owner's clock (their
    decision seen first) runs on.
    """
    ours = clock.assignee_id == previous_assignee_id and clock.started_at <= at
    if not ours or clock.unowned_since is not None or clock.touched_at is not None:
        return clock
    return _rescheduled(clock.model_copy(update={"unowned_since": at}))


def _apply(
    clock: SlaClock, firing: Firing, now: datetime, directory: Directory
) -> tuple[SlaClock, list[Emission]]:
    if firing.kind is FiringKind.WARNING:
        return _warn(clock, now)
    if firing.kind is FiringKind.BREACH:
        return _breach(clock, now, directory)
    return _escalate(clock, firing, now, directory)


def _warn(clock: SlaClock, now: datetime) -> tuple[SlaClock, list[Emission]]:
    clock = clock.model_copy(update={"warned": True})
    event = emissions.sla_event(
        clock, EventType.SLA_WARNING, at=clock.warning_at, id_parts=("warning",)
    )
    alert = emissions.alert(
        clock,
        AlertKind.SLA_WARNING,
        recipients=[clock.assignee_id],
        title=f"Follow up before {clock.deadline.astimezone(clock.calendar.zone):%a %H:%M %Z}",
        summary=f"{emissions.describe(clock)}: most of the time is used.",
        now=now,
        id_parts=("warning",),
        urgency=emissions.warning_urgency(clock.tier),
    )
    return _rescheduled(clock), [event, alert]


def _breach(
    clock: SlaClock, now: datetime, directory: Directory
) -> tuple[SlaClock, list[Emission]]:
    clock = clock.model_copy(update={"status": ClockStatus.BREACHED, "breach_fired": True})
    manager = standing_in(directory.manager_chain(clock.assignee_id)[:1], directory, now)
    alert = emissions.alert(
        clock,
        AlertKind.SLA_BREACH,
        recipients=[clock.assignee_id, *(p.id for p in manager)],
        title="SLA breached: no follow-up yet",
        summary=f"{emissions.describe(clock)}: the deadline passed without a touch.",
        now=now,
        id_parts=("breached",),
    )
    emitted = [_breach_event(clock), alert]
    if clock.terms.reassign_on_breach:
        emitted.append(emissions.reassign_request(clock, now=now))
    return _rescheduled(clock), emitted


def _breach_event(clock: SlaClock) -> Emission:
    return emissions.sla_event(
        clock, EventType.SLA_BREACHED, at=clock.deadline, id_parts=("breached",)
    )


def _escalate(
    clock: SlaClock, firing: Firing, now: datetime, directory: Directory
) -> tuple[SlaClock, list[Emission]]:
    step = clock.terms.escalation[firing.level - 1]
    clock = clock.model_copy(
        update={
            "escalation_level": firing.level,
            "escalation_repeat": firing.repeat,
            "last_escalated_at": now,
        }
    )
    chosen = escalation_recipients(clock.assignee_id, step.notify, directory, at=now)
    people = [p.id for p in chosen]
    id_parts = ("escalated", firing.level, firing.repeat)
    emitted = [
        emissions.sla_event(
            clock, EventType.SLA_ESCALATED, at=firing.due_at, id_parts=id_parts, escalated_to=people
        )
    ]
    if people or step.channel_ids:
        emitted.append(
            emissions.alert(
                clock,
                AlertKind.SLA_ESCALATION,
                # The assignee always hears that their handoff went up the chain.
                recipients=[clock.assignee_id, *people],
                title=f"SLA escalation level {firing.level}: still no follow-up",
                summary=f"{emissions.describe(clock)}: breached and not yet touched.",
                now=now,
                id_parts=id_parts,
                channel_ids=step.channel_ids,
            )
        )
    return _rescheduled(clock), emitted


def escalation_recipients(
    assignee_id: str,
    target: EscalationTarget,
    directory: Directory,
    *,
    at: datetime | None = None,
) -> list[Person]:
    """Return who an escalation level notifies, through the assignee's manager chain.

    With `at`, a manager out of office then is stood in for by their cover (`standing_in`).
    """
    if target is EscalationTarget.ASSIGNEE:
        assignee = directory.get(assignee_id)
        return [] if assignee is None else [assignee]
    chain = directory.manager_chain(assignee_id)
    if target is EscalationTarget.MANAGER:
        chosen = chain[:1]
    else:
        # Above the direct manager; a flat organisation falls back to the people marked leader.
        chosen = chain[1:] or [p for p in directory.with_role(Role.LEADER) if p.id != assignee_id]
    return chosen if at is None else standing_in(chosen, directory, at)


def standing_in(people: list[Person], directory: Directory, at: datetime) -> list[Person]:
    """Return who hears an escalation in each person's place at `at`: themselves, or their
    active cover while they are out of office (the directory carries run-time availability)."""
    found: list[Person] = []
    for person in people:
        cover = directory.get(person.cover_id) if person.cover_id else None
        away = person.is_out_of_office(at) and cover is not None and cover.active
        chosen = cover if away and cover is not None else person
        if all(p.id != chosen.id for p in found):
            found.append(chosen)
    return found


def _same_account(clock: SlaClock, activity: ActivityLogged) -> bool:
    if clock.account_key is not None and activity.account_key == clock.account_key:
        return True
    return (
        clock.contact_email is not None
        and activity.contact_email is not None
        and activity.contact_email.casefold() == clock.contact_email.casefold()
    )


def _rescheduled(clock: SlaClock) -> SlaClock:
    firing = plan_next(clock)
    return clock.model_copy(
        update={
            "next_due_at": None if firing is None else firing.due_at,
            "next_kind": None if firing is None else firing.kind,
            "next_level": 0 if firing is None else firing.level,
            "next_repeat": 0 if firing is None else firing.repeat,
        }
    )
