from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tandem_shared import topics
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType
from tandem_sla_monitor.domain.clock import SlaClock, fire
from tandem_sla_monitor.publishing import SOURCE, emission_rows, envelope_of, topic_for

MONDAY_10AM = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))


def test_every_emitted_type_has_a_topic() -> None:
    assert topic_for(EventType.SLA_BREACHED) == topics.SLA
    assert topic_for(EventType.ALERT_REQUESTED) == topics.ALERT_REQUESTS
    assert topic_for(EventType.HANDOFF_REASSIGN_REQUESTED) == topics.HANDOFF_ACTIONS


def test_envelopes_keep_the_stable_id_and_the_account_key(
    clock: SlaClock, directory: Directory
) -> None:
    _, emitted = fire(clock, clock.deadline + timedelta(seconds=1), directory)
    envelopes = [envelope_of(e, causationid="cause-1") for e in emitted]
    assert [e.id for e in envelopes] == [e.event_id for e in emitted]
    assert {(e.source, e.subject, e.causationid) for e in envelopes} == {
        (SOURCE, "acme.com", "cause-1")
    }


def test_outbox_rows_round_trip(clock: SlaClock, directory: Directory) -> None:
    _, emitted = fire(clock, clock.warning_at, directory)
    rows = emission_rows(emitted)
    assert [row["topic"] for row in rows] == [topics.SLA, topics.ALERT_REQUESTS]
    decoded = [Envelope.from_bytes(row["value"]) for row in rows]
    assert [e.type for e in decoded] == [EventType.SLA_WARNING, EventType.ALERT_REQUESTED]
    assert all(row["key"] == b"acme.com" for row in rows)
