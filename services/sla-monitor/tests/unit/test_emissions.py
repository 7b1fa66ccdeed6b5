from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tandem_shared.directory import Directory
from tandem_shared.events import AlertKind, AlertRequested, EventType
from tandem_sla_monitor.domain.clock import SlaClock, fire
from tandem_sla_monitor.domain.emissions import Emission, alert, derived_id, describe

NEW_YORK = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_id("h1", "escalated", 1, 0) == derived_id("h1", "escalated", 1, 0)
    distinct = {
        derived_id("h1", "escalated", 1, 0),
        derived_id("h1", "escalated", 1, 1),
        derived_id("h1", "escalated", 2, 0),
        derived_id("h2", "escalated", 1, 0),
        derived_id("h1", "breached"),
    }
    assert len(distinct) == 5


def test_refiring_the_same_state_yields_the_same_ids(clock: SlaClock, directory: Directory) -> None:
    _, first = fire(clock, ny(2026, 3, 2, 13, 0), directory)
    _, second = fire(clock, ny(2026, 3, 2, 13, 0), directory)
    assert [e.event_id for e in first] == [e.event_id for e in second]
    alert_ids = [e.payload.alert_id for e in first if isinstance(e.payload, AlertRequested)]
    assert alert_ids == [e.event_id for e in first if e.event_type is EventType.ALERT_REQUESTED]


def test_on_time_and_late_firing_agree_on_ids(clock: SlaClock, directory: Directory) -> None:
    on_time: list[Emission] = []
    state = clock
    for due in (clock.warning_at, clock.deadline):
        state, emitted = fire(state, due, directory)
        on_time.extend(emitted)
    _, late = fire(clock, clock.deadline + timedelta(minutes=5), directory)
    assert [e.event_id for e in late] == [e.event_id for e in on_time]


def test_alert_carries_the_handoff_and_dedupes_recipients(clock: SlaClock) -> None:
    now = ny(2026, 3, 2, 10, 20)
    emission = alert(
        clock,
        AlertKind.SLA_BREACH,
        recipients=["ava.ae", "sam.manager", "ava.ae"],
        title="t",
        summary=describe(clock),
        now=now,
        id_parts=("breached",),
    )
    payload = emission.payload
    assert isinstance(payload, AlertRequested)
    assert payload.recipient_ids == ["ava.ae", "sam.manager"]
    assert (payload.handoff_id, payload.account_key) == (clock.handoff_id, clock.account_key)
    assert payload.sla_deadline == clock.deadline and payload.requested_at == now
    assert emission.subject == "acme.com"
    assert "Acme Corporation" in payload.summary


def test_a_new_decision_for_the_same_handoff_gets_new_ids(
    clock: SlaClock, directory: Directory
) -> None:
    reassigned = clock.model_copy(update={"decision_id": "decision-2"})
    _, first = fire(clock, clock.deadline, directory)
    _, second = fire(reassigned, clock.deadline, directory)
    assert not {e.event_id for e in first} & {e.event_id for e in second}
