"""The account timeline: merged kinds, stable order for equal times, no duplicates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tandem_api_gateway.domain.timeline import (
    TimelineEntry,
    TimelineKind,
    from_activity,
    from_alert,
    from_engagement,
    from_intent,
    from_routing,
    from_routing_note,
    from_sla,
    merge_timeline,
    sort_key,
)
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    AlertKind,
    AlertRequested,
    CrmSystem,
    EngagementKind,
    EngagementRecorded,
    EventType,
    HandoffReassignRequested,
    IntentObserved,
    MatchInfo,
    RoutingConflict,
    RoutingDecided,
    Signal,
    SlaEvent,
    Tier,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def entry(kind: TimelineKind, entry_id: str, minutes: int = 0) -> TimelineEntry:
    return TimelineEntry(
        at=T0 + timedelta(minutes=minutes), kind=kind, entry_id=entry_id, title=entry_id
    )


def test_merges_sources_newest_first_by_default() -> None:
    engagements = [
        entry(TimelineKind.ENGAGEMENT, "e1", 0),
        entry(TimelineKind.ENGAGEMENT, "e2", 30),
    ]
    activity = [entry(TimelineKind.SALES_ACTIVITY, "a1", 10)]
    merged = merge_timeline(engagements, activity)
    assert [e.entry_id for e in merged] == ["e2", "a1", "e1"]
    oldest_first = merge_timeline(engagements, activity, newest_first=False)
    assert [e.entry_id for e in oldest_first] == ["e1", "a1", "e2"]


def test_equal_times_put_cause_before_effect_then_id() -> None:
    same_time = [
        entry(TimelineKind.SALES_ACTIVITY, "act"),
        entry(TimelineKind.ALERT, "alert"),
        entry(TimelineKind.SLA, "sla"),
        entry(TimelineKind.ROUTING, "route"),
        entry(TimelineKind.ENGAGEMENT, "eng-b"),
        entry(TimelineKind.ENGAGEMENT, "eng-a"),
        entry(TimelineKind.INTENT, "intent"),
    ]
    merged = merge_timeline(same_time, newest_first=False)
    assert [e.entry_id for e in merged] == [
        "intent",
        "eng-a",
        "eng-b",
        "route",
        "sla",
        "alert",
        "act",
    ]


def test_order_does_not_depend_on_input_order() -> None:
    entries = [entry(kind, f"{kind.value}-{i}", i % 3) for kind in TimelineKind for i in range(4)]
    expected = merge_timeline(entries)
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)
    assert merge_timeline(shuffled[:10], shuffled[10:]) == expected
    keys = [sort_key(e) for e in expected]
    assert keys == sorted(keys, reverse=True)


def test_redelivered_entries_appear_once() -> None:
    first = entry(TimelineKind.ALERT, "al-1")
    merged = merge_timeline([first], [first], [entry(TimelineKind.SLA, "al-1")])
    assert {(e.kind, e.entry_id) for e in merged} == {
        (TimelineKind.ALERT, "al-1"),
        (TimelineKind.SLA, "al-1"),
    }
    assert len(merged) == 2


def test_naive_timestamps_are_refused() -> None:
    naive = TimelineEntry(
        at=datetime(2025, 3, 3), kind=TimelineKind.INTENT, entry_id="x", title="x"
    )
    with pytest.raises(ValueError, match="naive timestamp"):
        merge_timeline([naive])


def test_builders_map_each_event_kind() -> None:
    engagement = EngagementRecorded(
        engagement_id="eng-1",
        source="segment",
        kind=EngagementKind.CONTENT_DOWNLOAD,
        name="Whitepaper Downloaded",
        contact_name="Jo Park",
        occurred_at=T0,
    )
    intent = IntentObserved(
        provider="bombora", account_key="acme.com", topic="CRM", surging=True, observed_at=T0
    )
    routing = RoutingDecided(
        decision_id="dec-1",
        handoff_id="h-1",
        tier=Tier.T1,
        in_tal=True,
        signal=Signal.MEETING_REQUEST,
        assignee_id="ava.ae",
        assignee_role="ae",
        match=MatchInfo(method="domain"),
        rule_set_version="v1",
        decided_at=T0,
    )
    sla = SlaEvent(
        handoff_id="h-1",
        assignee_id="ava.ae",
        tier=Tier.T1,
        signal=Signal.MEETING_REQUEST,
        started_at=T0,
        deadline=T0 + timedelta(hours=1),
        allowed_seconds=3600,
        policy_version="v1",
        occurred_at=T0 + timedelta(hours=1),
    )
    alert = AlertRequested(
        alert_id="al-1",
        kind=AlertKind.HANDOFF,
        recipient_ids=["ava.ae", "dan.sdr"],
        title="Acme asked for a meeting",
        requested_at=T0,
    )
    activity = ActivityLogged(
        crm=CrmSystem.HUBSPOT,
        activity_id="act-1",
        kind=ActivityKind.CALL,
        actor_id="ava.ae",
        occurred_at=T0 + timedelta(minutes=20),
    )
    entries = [
        from_engagement(engagement),
        from_intent(intent, event_id="evt-intent"),
        from_routing(routing),
        from_sla(EventType.SLA_BREACHED, sla, event_id="evt-sla"),
        from_alert(alert),
        from_activity(activity),
    ]
    assert [(e.kind, e.entry_id) for e in entries] == [
        (TimelineKind.ENGAGEMENT, "eng-1"),
        (TimelineKind.INTENT, "evt-intent"),
        (TimelineKind.ROUTING, "dec-1"),
        (TimelineKind.SLA, "evt-sla"),
        (TimelineKind.ALERT, "al-1"),
        (TimelineKind.SALES_ACTIVITY, "act-1"),
    ]
    titles = [e.title for e in entries]
    assert titles[0] == "Whitepaper Downloaded by Jo Park"
    assert titles[1] == "Researching CRM on bombora (surging)"
    assert titles[3] == "SLA breached for ava.ae"
    assert titles[5] == "Call"
    assert "recipient_ids" not in entries[4].data  # reps read account timelines
    merged = merge_timeline(entries, newest_first=False)
    assert [e.kind for e in merged][-1] is TimelineKind.SLA  # the breach, an hour later


def test_routing_conflicts_and_reassignment_requests_are_routing_entries_of_their_handoff() -> None:
    conflict = RoutingConflict(
        account_key="acme.com",
        handoff_id="h-1",
        candidates={"crm": "ava.ae", "territory": "ben.ae"},
        reason="CRM owner and territory disagree",
        rule_set_version="v1",
        occurred_at=T0,
    )
    entry = from_routing_note(conflict, event_id="e-1")
    assert (entry.kind, entry.entry_id, entry.at) == (TimelineKind.ROUTING, "e-1", T0)
    assert entry.title == "Routing conflict: CRM owner and territory disagree"
    assert entry.data == {"handoff_id": "h-1", "candidates": conflict.candidates}
    request = HandoffReassignRequested(
        handoff_id="h-1",
        previous_assignee_id="ava.ae",
        reason="on leave",
        requested_at=T0 + timedelta(minutes=3),
    )
    entry = from_routing_note(request, event_id="e-2")
    assert entry.title == "Reassignment requested by ava.ae: on leave"
    assert (entry.actor_id, entry.data, entry.at) == (
        "ava.ae",
        {"handoff_id": "h-1"},
        request.requested_at,
    )
