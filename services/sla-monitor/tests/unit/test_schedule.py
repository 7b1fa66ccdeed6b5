from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from tandem_shared.directory import Directory, Person
from tandem_shared.events import AlertRequested, EventType, RoutingDecided, SlaEvent
from tandem_sla_monitor.domain.clock import (
    ClockStatus,
    SlaClock,
    acknowledge,
    fire,
    next_firing,
    start_clock,
)
from tandem_sla_monitor.domain.emissions import Emission
from tandem_sla_monitor.domain.policy import parse_policy
from tandem_sla_monitor.domain.schedule import span_of

NEW_YORK = ZoneInfo("America/New_York")
MONDAY_10AM = datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK)

DecisionFactory = Callable[..., RoutingDecided]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def types(emitted: list[Emission]) -> list[EventType]:
    return [e.event_type for e in emitted]


def alerts(emitted: list[Emission]) -> list[AlertRequested]:
    return [e.payload for e in emitted if isinstance(e.payload, AlertRequested)]


def sla_events(emitted: list[Emission]) -> list[SlaEvent]:
    return [e.payload for e in emitted if isinstance(e.payload, SlaEvent)]


def walk(clock: SlaClock, directory: Directory) -> list[SlaEvent]:
    """Fire a clock on time, one due time after another, until nothing is left."""
    events: list[SlaEvent] = []
    while (firing := next_firing(clock)) is not None:
        clock, emitted = fire(clock, firing.due_at, directory)
        assert emitted
        events.extend(sla_events(emitted))
    return events


def test_escalation_walks_the_chain_with_repeats(clock: SlaClock, directory: Directory) -> None:
    # Default chain: rep after 30 min (every 60), manager after 120 (every 240), leadership 480.
    events = walk(clock, directory)
    assert [(e.escalation_level, e.occurred_at) for e in events] == [
        (None, clock.warning_at),
        (None, ny(2026, 3, 2, 10, 15)),
        (1, ny(2026, 3, 2, 10, 45)),
        (1, ny(2026, 3, 2, 11, 45)),
        (2, ny(2026, 3, 2, 12, 15)),
        (2, ny(2026, 3, 2, 16, 15)),
        # 435 business minutes are left on Monday; leadership comes 45 into Tuesday.
        (3, ny(2026, 3, 3, 9, 45)),
    ]


def test_each_firing_runs_in_a_span_named_after_its_kind(
    clock: SlaClock, directory: Directory
) -> None:
    spans = []
    while (firing := next_firing(clock)) is not None:
        spans.append(span_of(firing))
        clock, _ = fire(clock, firing.due_at, directory)
    assert [name for name, _ in spans[:3]] == [
        "sla fire warning",
        "sla fire breach",
        "sla fire escalation",
    ]
    assert spans[1][1] == {"tandem.sla.firing": "breach"}
    # Escalations say which level and repeat they are; the name stays one of three.
    assert [
        (a["tandem.sla.escalation_level"], a["tandem.sla.escalation_repeat"]) for _, a in spans[2:]
    ] == [
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
        (3, 0),
    ]
    assert {name for name, _ in spans[2:]} == {"sla fire escalation"}


def test_a_clock_with_nothing_planned_fires_in_a_plain_span() -> None:
    assert span_of(None) == ("sla fire", {})


def test_escalation_stops_after_max_repeats(
    decision: DecisionFactory, ava: Person, directory: Directory
) -> None:
    policy = parse_policy(
        "version: v1\nescalation:\n"
        "  - {notify: manager, after_breach_minutes: 0, repeat_every_minutes: 30, max_repeats: 2}\n"
    )
    clock, _ = start_clock(decision(MONDAY_10AM), ava, policy)
    escalations = [e.occurred_at for e in walk(clock, directory) if e.escalation_level]
    assert escalations == [ny(2026, 3, 2, 10, 15), ny(2026, 3, 2, 10, 45), ny(2026, 3, 2, 11, 15)]


def test_late_firing_sends_one_reminder_not_the_missed_ones(
    decision: DecisionFactory, ava: Person, directory: Directory
) -> None:
    policy = parse_policy(
        "version: v1\nescalation:\n"
        "  - {notify: manager, after_breach_minutes: 0, repeat_every_minutes: 30}\n"
    )
    clock, _ = start_clock(decision(MONDAY_10AM), ava, policy)
    # Down from 10:00 to 13:05: the first escalation and five reminders were due; one is sent.
    caught_up, emitted = fire(clock, ny(2026, 3, 2, 13, 5), directory)
    assert types(emitted).count(EventType.SLA_ESCALATED) == 1
    pending = next_firing(caught_up)
    assert pending is not None
    # Back on the reminder grid: every 30 minutes from the 10:15 deadline.
    assert (pending.level, pending.repeat, pending.due_at) == (1, 6, ny(2026, 3, 2, 13, 15))


def test_late_firing_fires_each_due_event_once_in_order(
    clock: SlaClock, directory: Directory
) -> None:
    # The process was down from Monday 10:00 to Tuesday noon.
    tuesday_noon = ny(2026, 3, 3, 12, 0)
    caught_up, emitted = fire(clock, tuesday_noon, directory)
    events = sla_events(emitted)
    assert [(e.escalation_level, e.occurred_at) for e in events] == [
        (None, clock.warning_at),
        (None, clock.deadline),
        (1, ny(2026, 3, 2, 10, 45)),
        (2, ny(2026, 3, 2, 12, 15)),
        (3, ny(2026, 3, 3, 9, 45)),
    ]
    assert types(emitted).count(EventType.SLA_WARNING) == 1
    assert types(emitted).count(EventType.SLA_BREACHED) == 1
    assert all(a.requested_at == tuesday_noon for a in alerts(emitted))
    assert len({e.event_id for e in emitted}) == len(emitted)
    again, nothing = fire(caught_up, tuesday_noon, directory)
    assert nothing == [] and again == caught_up


def test_acknowledgement_pauses_escalation_but_not_the_clock(
    clock: SlaClock, directory: Directory
) -> None:
    breached, _ = fire(clock, clock.deadline, directory)
    acked, emitted = acknowledge(breached, "ava.ae", ny(2026, 3, 2, 10, 20))
    assert types(emitted) == [EventType.SLA_ACKNOWLEDGED]
    assert acked.status is ClockStatus.BREACHED and acked.acknowledged_by == "ava.ae"
    # The 30-minute rep reminder falls inside the 120-minute pause.
    quiet, nothing = fire(acked, ny(2026, 3, 2, 12, 19), directory)
    assert nothing == []
    _, resumed = fire(quiet, ny(2026, 3, 2, 12, 20), directory)
    # Escalation resumes at the level reached by then (manager), not by replaying the rep's.
    assert [e.escalation_level for e in sla_events(resumed)] == [2]


def test_acknowledgement_before_the_deadline_still_breaches(
    clock: SlaClock, directory: Directory
) -> None:
    acked, _ = acknowledge(clock, "ava.ae", ny(2026, 3, 2, 10, 5))
    breached, emitted = fire(acked, clock.deadline, directory)
    assert EventType.SLA_BREACHED in types(emitted)
    pending = next_firing(breached)
    assert pending is not None
    assert (pending.level, pending.due_at) == (1, ny(2026, 3, 2, 12, 5))


def test_acknowledgement_without_pause_limit_stops_escalation(
    decision: DecisionFactory, ava: Person, directory: Directory
) -> None:
    policy = parse_policy("version: v1\nacknowledgement_pause_minutes: null\n")
    clock, _ = start_clock(decision(MONDAY_10AM), ava, policy)
    acked, _ = acknowledge(clock, "ava.ae", ny(2026, 3, 2, 10, 1))
    breached, emitted = fire(acked, ny(2026, 3, 3, 17, 0), directory)
    assert EventType.SLA_BREACHED in types(emitted)
    assert EventType.SLA_ESCALATED not in types(emitted)
    assert next_firing(breached) is None
