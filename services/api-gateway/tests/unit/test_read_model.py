"""The read models' pure rules: engagement weights and an order-tolerant SLA state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from tandem_api_gateway.domain.metrics import SlaOutcome
from tandem_api_gateway.domain.read_model import (
    SlaState,
    SlaStatus,
    apply_sla_event,
    engagement_weight,
)
from tandem_shared.events import EngagementKind, EventType, Signal, SlaEvent, Tier

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def _event(minutes: int, **extra: object) -> SlaEvent:
    return SlaEvent(
        handoff_id="h1",
        assignee_id="ava.ae",
        tier=Tier.T1,
        signal=Signal.MEETING_REQUEST,
        started_at=START,
        deadline=START + timedelta(hours=1),
        allowed_seconds=3600,
        policy_version="v1",
        occurred_at=START + timedelta(minutes=minutes),
        **extra,  # type: ignore[arg-type]
    )


def _fold(events: list[tuple[str, SlaEvent]]) -> SlaState:
    state = SlaState()
    for event_type, event in events:
        state = apply_sla_event(state, event_type=event_type, event=event)
    return state


def test_a_meeting_request_weighs_more_than_a_page_view() -> None:
    assert engagement_weight(EngagementKind.MEETING_REQUEST) > engagement_weight(
        EngagementKind.PAGE_VIEW
    )


def test_a_touch_within_the_sla_meets_it() -> None:
    state = _fold(
        [
            (EventType.SLA_STARTED, _event(0)),
            (EventType.SLA_MET, _event(30, within_sla=True)),
        ]
    )
    assert (state.status, state.outcome) == (SlaStatus.MET, SlaOutcome.MET)
    assert state.first_touch_at == START + timedelta(minutes=30)


def test_a_late_touch_stops_the_clock_but_counts_as_breached() -> None:
    state = _fold([(EventType.SLA_MET, _event(90, within_sla=False))])
    assert state.outcome is SlaOutcome.BREACHED
    assert state.outcome_at == START + timedelta(hours=1)
    assert state.first_touch_at == START + timedelta(minutes=90)


@pytest.mark.parametrize(
    "order",
    list(
        permutations(
            [
                (EventType.SLA_STARTED, _event(0)),
                (EventType.SLA_WARNING, _event(45)),
                (EventType.SLA_BREACHED, _event(60)),
                (EventType.SLA_ESCALATED, _event(61, escalation_level=2)),
                (EventType.SLA_MET, _event(80, within_sla=False)),
            ]
        )
    ),
)
def test_any_arrival_order_gives_the_same_state(order: tuple[tuple[str, SlaEvent], ...]) -> None:
    state = _fold(list(order))
    assert state.status is SlaStatus.MET
    assert state.outcome is SlaOutcome.BREACHED
    assert state.escalation_level == 2
    assert state.first_touch_at == START + timedelta(minutes=80)


def test_an_event_applied_twice_changes_nothing() -> None:
    once = _fold([(EventType.SLA_BREACHED, _event(60))])
    assert apply_sla_event(once, event_type=EventType.SLA_BREACHED, event=_event(60)) == once


def test_other_event_types_are_refused() -> None:
    with pytest.raises(ValueError, match="not an SLA event"):
        apply_sla_event(SlaState(), event_type=EventType.ROUTING_DECIDED, event=_event(0))
