from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tandem_shared.directory import Directory, Period, Person
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    AlertKind,
    AlertRequested,
    EventType,
    HandoffReassignRequested,
    RoutingDecided,
    SlaEvent,
    Tier,
    Urgency,
)
from tandem_sla_monitor.domain.clock import (
    ClockStatus,
    SlaClock,
    acknowledge,
    escalation_recipients,
    fire,
    next_firing,
    qualifying_activity,
    record_activity,
    start_clock,
    stop_unowned,
)
from tandem_sla_monitor.domain.emissions import Emission
from tandem_sla_monitor.domain.policy import EscalationTarget, SlaPolicy, parse_policy
from tandem_sla_monitor.domain.schedule import FiringKind

NEW_YORK = ZoneInfo("America/New_York")
MONDAY_10AM = datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK)
NO_TEAM: frozenset[str] = frozenset()

DecisionFactory = Callable[..., RoutingDecided]
ActivityFactory = Callable[..., ActivityLogged]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def types(emitted: list[Emission]) -> list[EventType]:
    return [e.event_type for e in emitted]


def alerts(emitted: list[Emission]) -> list[AlertRequested]:
    return [e.payload for e in emitted if isinstance(e.payload, AlertRequested)]


def sla_events(emitted: list[Emission]) -> list[SlaEvent]:
    return [e.payload for e in emitted if isinstance(e.payload, SlaEvent)]


def test_start_computes_warning_and_deadline_in_business_time(clock: SlaClock) -> None:
    assert clock.deadline == ny(2026, 3, 2, 10, 15)
    assert clock.warning_at == MONDAY_10AM + timedelta(seconds=0.75 * 15 * 60)
    assert clock.status is ClockStatus.RUNNING
    first = next_firing(clock)
    assert first is not None
    assert (first.kind, first.due_at) == (FiringKind.WARNING, clock.warning_at)


def test_start_emits_sla_started(decision: DecisionFactory, ava: Person, policy: SlaPolicy) -> None:
    _, emitted = start_clock(decision(MONDAY_10AM), ava, policy)
    assert types(emitted) == [EventType.SLA_STARTED]
    event = emitted[0].payload
    assert isinstance(event, SlaEvent)
    assert event.allowed_seconds == 15 * 60
    assert event.policy_version == policy.version
    assert emitted[0].subject == "acme.com"


def test_start_outside_hours_counts_from_next_opening(
    decision: DecisionFactory, ava: Person, policy: SlaPolicy
) -> None:
    saturday = ny(2026, 3, 7, 11, 0)
    clock, _ = start_clock(decision(saturday), ava, policy)
    assert clock.started_at == saturday
    assert clock.deadline == ny(2026, 3, 9, 9, 15)  # after the DST change, too


def test_start_needs_the_assignee(
    decision: DecisionFactory, directory: Directory, policy: SlaPolicy
) -> None:
    ben = directory.get("ben.ae")
    assert ben is not None
    with pytest.raises(ValueError, match="assignee"):
        start_clock(decision(MONDAY_10AM), ben, policy)


def test_warning_fires_at_75_percent_to_the_assignee(clock: SlaClock, directory: Directory) -> None:
    before, emitted = fire(clock, clock.warning_at - timedelta(seconds=1), directory)
    assert emitted == [] and before == clock
    warned, emitted = fire(clock, clock.warning_at, directory)
    assert types(emitted) == [EventType.SLA_WARNING, EventType.ALERT_REQUESTED]
    (alert,) = alerts(emitted)
    assert alert.kind is AlertKind.SLA_WARNING
    assert alert.recipient_ids == ["ava.ae"]
    assert alert.title.endswith("Mon 10:15 EST")  # the assignee's own wall clock
    assert alert.urgency is Urgency.URGENT
    assert warned.warned and warned.status is ClockStatus.RUNNING
    assert sla_events(emitted)[0].elapsed_business_seconds == clock.terms.warning_seconds


def test_warning_of_a_lower_tier_is_not_urgent(
    decision: DecisionFactory, ava: Person, policy: SlaPolicy, directory: Directory
) -> None:
    clock, _ = start_clock(decision(MONDAY_10AM, tier=Tier.T2), ava, policy)
    _, emitted = fire(clock, clock.warning_at, directory)
    assert alerts(emitted)[0].urgency is Urgency.NORMAL


def test_breach_alerts_assignee_and_manager(clock: SlaClock, directory: Directory) -> None:
    warned, _ = fire(clock, clock.warning_at, directory)
    breached, emitted = fire(warned, clock.deadline, directory)
    assert types(emitted) == [EventType.SLA_BREACHED, EventType.ALERT_REQUESTED]
    (alert,) = alerts(emitted)
    assert alert.kind is AlertKind.SLA_BREACH
    assert alert.recipient_ids == ["ava.ae", "sam.manager"]
    assert alert.sla_deadline == clock.deadline
    assert breached.status is ClockStatus.BREACHED


def test_escalation_levels_notify_their_people(clock: SlaClock, directory: Directory) -> None:
    seen = {}
    while (firing := next_firing(clock)) is not None:
        clock, emitted = fire(clock, firing.due_at, directory)
        if firing.kind is FiringKind.ESCALATION and firing.repeat == 0:
            (event,) = sla_events(emitted)
            (alert,) = alerts(emitted)
            assert alert.kind is AlertKind.SLA_ESCALATION
            seen[firing.level] = (event.escalated_to, alert.recipient_ids)
    assert seen == {
        1: (["ava.ae"], ["ava.ae"]),
        2: (["sam.manager"], ["ava.ae", "sam.manager"]),
        3: (["lea.leader"], ["ava.ae", "lea.leader"]),
    }


def test_second_acknowledgement_changes_nothing(clock: SlaClock) -> None:
    acked, _ = acknowledge(clock, "ava.ae", ny(2026, 3, 2, 10, 5))
    again, emitted = acknowledge(acked, "sam.manager", ny(2026, 3, 2, 10, 6))
    assert emitted == [] and again == acked


def test_activity_by_the_assignee_meets_the_sla(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    touched_at = ny(2026, 3, 2, 10, 9)
    met, emitted = record_activity(
        clock, activity(touched_at), team_ids=NO_TEAM, directory=directory
    )
    assert met.status is ClockStatus.MET
    assert met.touch_business_seconds == 9 * 60
    assert types(emitted) == [EventType.SLA_MET]
    assert sla_events(emitted)[0].met_by_activity_id == "act-1"
    assert next_firing(met) is None
    later, nothing = fire(met, ny(2026, 3, 9, 10, 0), directory)
    assert nothing == [] and later == met


def test_activity_that_arrived_before_the_decision_stops_the_clock(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    stored = [
        activity(ny(2026, 3, 2, 9, 50), activity_id="before-handoff"),
        activity(ny(2026, 3, 2, 10, 3), kind=ActivityKind.NOTE, activity_id="note"),
        activity(ny(2026, 3, 2, 10, 2), account_key="globex.com", activity_id="other-account"),
        activity(ny(2026, 3, 2, 10, 7), activity_id="late-call"),
        activity(ny(2026, 3, 2, 10, 4), kind=ActivityKind.EMAIL, activity_id="email"),
    ]
    found = qualifying_activity(clock, stored, team_ids=NO_TEAM, directory=directory)
    assert found is not None and found.activity_id == "email"
    met, _ = record_activity(clock, found, team_ids=NO_TEAM, directory=directory)
    assert met.status is ClockStatus.MET


@pytest.mark.parametrize(
    ("actor_id", "team", "counts"),
    [
        ("ben.ae", NO_TEAM, False),  # someone else
        ("hs-owner-201", NO_TEAM, False),  # the SDR, not on this account team
        ("hs-owner-201", frozenset({"dan.sdr"}), True),  # the SDR on the account team
        ("ava.ae", NO_TEAM, True),  # the assignee by person id
        ("hs-owner-999", NO_TEAM, False),  # unknown CRM user
        (None, NO_TEAM, False),
    ],
)
def test_only_the_assignee_or_account_team_can_touch(
    clock: SlaClock,
    directory: Directory,
    activity: ActivityFactory,
    actor_id: str | None,
    team: frozenset[str],
    counts: bool,
) -> None:
    done = activity(ny(2026, 3, 2, 10, 5), actor_id=actor_id)
    after, emitted = record_activity(clock, done, team_ids=team, directory=directory)
    assert (after.status is ClockStatus.MET) is counts
    assert bool(emitted) is counts


def test_activity_matching_the_handoff_contact_counts(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    done = activity(ny(2026, 3, 2, 10, 5), account_key=None, contact_email="JANE@acme.com")
    met, _ = record_activity(clock, done, team_ids=NO_TEAM, directory=directory)
    assert met.status is ClockStatus.MET


def test_touch_after_the_breach_stops_escalation_but_stays_breached(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    breached, _ = fire(clock, ny(2026, 3, 2, 11, 0), directory)
    late, emitted = record_activity(
        breached, activity(ny(2026, 3, 2, 11, 30)), team_ids=NO_TEAM, directory=directory
    )
    assert late.status is ClockStatus.BREACHED
    assert types(emitted) == [EventType.SLA_MET]
    assert sla_events(emitted)[0].elapsed_business_seconds == 90 * 60
    assert next_firing(late) is None


def test_touch_in_time_reported_after_the_breach_counts_as_met(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    breached, _ = fire(clock, ny(2026, 3, 2, 10, 20), directory)
    synced_late = activity(ny(2026, 3, 2, 10, 14))
    met, _ = record_activity(breached, synced_late, team_ids=NO_TEAM, directory=directory)
    assert met.status is ClockStatus.MET


def test_late_touch_before_any_firing_records_the_breach(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    late, emitted = record_activity(
        clock, activity(ny(2026, 3, 2, 10, 30)), team_ids=NO_TEAM, directory=directory
    )
    assert types(emitted) == [EventType.SLA_BREACHED, EventType.SLA_MET]
    assert late.status is ClockStatus.BREACHED
    _, fired = fire(clock, clock.deadline, directory)
    breach_ids = [e.event_id for e in fired if e.event_type is EventType.SLA_BREACHED]
    assert breach_ids == [emitted[0].event_id]


def test_an_earlier_touch_arriving_later_corrects_the_first_touch(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    late, _ = record_activity(
        clock, activity(ny(2026, 3, 2, 10, 30)), team_ids=NO_TEAM, directory=directory
    )
    earlier = activity(ny(2026, 3, 2, 10, 10), activity_id="act-0")
    corrected, emitted = record_activity(late, earlier, team_ids=NO_TEAM, directory=directory)
    assert corrected.status is ClockStatus.MET
    assert corrected.touched_by_activity_id == "act-0"
    assert types(emitted) == [EventType.SLA_MET]
    same, nothing = record_activity(
        corrected, activity(ny(2026, 3, 2, 10, 12)), team_ids=NO_TEAM, directory=directory
    )
    assert nothing == [] and same == corrected


def test_running_clock_keeps_its_policy_after_a_config_change(
    decision: DecisionFactory, ava: Person, directory: Directory
) -> None:
    v1 = parse_policy("version: v1\n")
    clock, _ = start_clock(decision(MONDAY_10AM), ava, v1)
    v2 = parse_policy("version: v2\ntargets:\n  meeting_request: {1: 60}\n")
    stored = SlaClock.model_validate_json(clock.model_dump_json())  # a Postgres round trip
    assert stored == clock
    _, emitted = fire(stored, ny(2026, 3, 2, 10, 15), directory)
    (breach,) = [e for e in sla_events(emitted) if e.deadline == e.occurred_at]
    assert (breach.policy_version, breach.allowed_seconds) == ("v1", 15 * 60)
    fresh, _ = start_clock(decision(MONDAY_10AM, handoff_id="handoff-2"), ava, v2)
    assert fresh.deadline == ny(2026, 3, 2, 11, 0)


def test_reassignment_requested_on_breach_when_the_policy_says_so(
    decision: DecisionFactory, ava: Person, directory: Directory
) -> None:
    policy = parse_policy("version: v1\nreassign_on_breach: true\n")
    clock, _ = start_clock(decision(MONDAY_10AM), ava, policy)
    _, emitted = fire(clock, clock.deadline, directory)
    (request,) = [e.payload for e in emitted if isinstance(e.payload, HandoffReassignRequested)]
    assert request.previous_assignee_id == "ava.ae"
    assert request.handoff_id == clock.handoff_id


def test_leadership_is_everyone_above_the_direct_manager(directory: Directory) -> None:
    def ids(person_id: str, target: EscalationTarget) -> list[str]:
        return [p.id for p in escalation_recipients(person_id, target, directory)]

    assert ids("ava.ae", EscalationTarget.MANAGER) == ["sam.manager"]
    assert ids("ava.ae", EscalationTarget.LEADERSHIP) == ["lea.leader"]
    assert ids("lea.leader", EscalationTarget.MANAGER) == []


def test_a_manager_out_of_office_is_stood_in_for_by_their_cover(directory: Directory) -> None:
    away = (Period(start=MONDAY_10AM, end=MONDAY_10AM + timedelta(days=2)),)
    people = tuple(
        p.model_copy(update={"out_of_office": away, "cover_id": "lea.leader"})
        if p.id == "sam.manager"
        else p
        for p in directory.people
    )
    changed = Directory(people=people)

    def ids(at: datetime) -> list[str]:
        chosen = escalation_recipients("ava.ae", EscalationTarget.MANAGER, changed, at=at)
        return [p.id for p in chosen]

    assert ids(MONDAY_10AM + timedelta(hours=1)) == ["lea.leader"]
    assert ids(MONDAY_10AM + timedelta(days=3)) == ["sam.manager"]  # back by then


def test_leadership_falls_back_to_leaders_in_a_flat_organisation(directory: Directory) -> None:
    # Nobody sits above sam.manager's own manager, so the people marked leader are told.
    flat = Directory(
        people=tuple(
            p.model_copy(update={"manager_id": None}) if p.id == "sam.manager" else p
            for p in directory.people
        )
    )
    leaders = escalation_recipients("ava.ae", EscalationTarget.LEADERSHIP, flat)
    assert [p.id for p in leaders] == ["lea.leader"]


def test_met_event_says_whether_the_touch_came_in_time(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    for minutes, within in ((10, True), (20, False)):
        touch = activity(MONDAY_10AM + timedelta(minutes=minutes))
        _, emitted = record_activity(clock, touch, team_ids=NO_TEAM, directory=directory)
        [met] = [e for e in emitted if e.event_type is EventType.SLA_MET]
        assert isinstance(met.payload, SlaEvent) and met.payload.within_sla is within


def test_a_handoff_nobody_owns_stops_its_clock(clock: SlaClock, directory: Directory) -> None:
    let_go = MONDAY_10AM + timedelta(minutes=5)
    stopped = stop_unowned(clock, previous_assignee_id="ava.ae", at=let_go)

    assert stopped.unowned_since == let_go and next_firing(stopped) is None
    # Long past its deadline: no warning, no breach, no escalation to anyone's manager.
    assert fire(stopped, clock.deadline + timedelta(days=1), directory) == (stopped, [])
    # Someone else's clock (a newer owner's, or one started later) runs on.
    assert stop_unowned(clock, previous_assignee_id="ben.ae", at=let_go) is clock
    before = MONDAY_10AM - timedelta(minutes=1)
    assert stop_unowned(clock, previous_assignee_id="ava.ae", at=before) is clock
