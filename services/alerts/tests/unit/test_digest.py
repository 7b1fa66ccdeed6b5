"""Digest timing in the person's time zone (DST included) and grouping by account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tandem_alerts.domain.digest import build_digest, is_digest_due, next_digest_at
from tandem_shared.events import Urgency


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def daily(make_person):
    return make_person("ny", timezone="America/New_York", preferences={"digest_time": "08:30"})


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2024, 7, 1, 10, 0), utc(2024, 7, 1, 12, 30)),  # EDT: 08:30 is 12:30 UTC
        (utc(2024, 7, 1, 12, 30), utc(2024, 7, 2, 12, 30)),  # strictly after
        (utc(2024, 1, 15, 10, 0), utc(2024, 1, 15, 13, 30)),  # EST: 08:30 is 13:30 UTC
        (utc(2024, 3, 9, 14, 0), utc(2024, 3, 10, 12, 30)),  # across spring forward
        (utc(2024, 11, 2, 13, 0), utc(2024, 11, 3, 13, 30)),  # across fall back
        (utc(2024, 7, 2, 3, 0), utc(2024, 7, 2, 12, 30)),  # 23:00 local the day before
    ],
)
def test_daily_digest_is_at_the_local_time_whatever_the_offset(daily, after, expected):
    assert next_digest_at(daily, after=after) == expected


def test_daily_digest_inside_the_spring_gap_moves_forward_an_hour(make_person):
    person = make_person("ny", timezone="America/New_York", preferences={"digest_time": "02:30"})
    # 02:30 does not exist on 2024-03-10 in New York; it becomes 03:30 EDT.
    assert next_digest_at(person, after=utc(2024, 3, 10, 0, 0)) == utc(2024, 3, 10, 7, 30)


def test_daily_digest_at_an_ambiguous_time_fires_once(make_person):
    person = make_person("ny", timezone="America/New_York", preferences={"digest_time": "01:30"})
    first = next_digest_at(person, after=utc(2024, 11, 3, 0, 0))
    assert first == utc(2024, 11, 3, 5, 30)  # the first 01:30 (EDT)
    assert next_digest_at(person, after=first) == utc(2024, 11, 4, 6, 30)


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        ("America/New_York", utc(2024, 7, 1, 10, 15), utc(2024, 7, 1, 11, 0)),
        ("America/New_York", utc(2024, 7, 1, 11, 0), utc(2024, 7, 1, 12, 0)),
        ("Asia/Kolkata", utc(2024, 7, 1, 10, 15), utc(2024, 7, 1, 10, 30)),  # +05:30
        ("Asia/Kathmandu", utc(2024, 7, 1, 10, 0), utc(2024, 7, 1, 10, 15)),  # +05:45
        # Fall back: 01:00 EDT (05:00 UTC), then 01:00 EST (06:00 UTC) are both tops of hour.
        ("America/New_York", utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6, 0)),
    ],
)
def test_hourly_digest_is_at_the_local_top_of_the_hour(make_person, zone, after, expected):
    person = make_person("p", timezone=zone, preferences={"digest": "hourly"})
    assert next_digest_at(person, after=after) == expected


def test_no_digest_when_off(make_person):
    person = make_person("p", preferences={"digest": "off"})
    assert next_digest_at(person, after=utc(2024, 7, 1)) is None
    assert not is_digest_due(person, last_sent_at=None, now=utc(2024, 7, 1))


def test_digest_is_due_once_its_time_has_passed(daily):
    last = utc(2024, 7, 1, 12, 30)
    assert not is_digest_due(daily, last_sent_at=last, now=utc(2024, 7, 2, 12, 29))
    assert is_digest_due(daily, last_sent_at=last, now=utc(2024, 7, 2, 12, 30))
    assert is_digest_due(daily, last_sent_at=None, now=last)


def test_naive_times_are_refused(daily):
    with pytest.raises(ValueError, match="timezone-aware"):
        next_digest_at(daily, after=datetime(2024, 7, 1))


def test_digest_groups_by_account_newest_first(make_alert):
    t0 = utc(2024, 7, 1, 9, 0)
    alerts = [
        make_alert(alert_id="a1", account_key="acme.com", requested_at=t0),
        make_alert(alert_id="b1", account_key="beta.io", account_name="Beta", requested_at=t0),
        make_alert(alert_id="a2", account_key="acme.com", requested_at=t0 + timedelta(hours=2)),
        make_alert(
            alert_id="x1",
            account_key=None,
            account_name=None,
            requested_at=t0 + timedelta(hours=3),
            urgency=Urgency.LOW,
        ),
        make_alert(alert_id="a1", account_key="acme.com", requested_at=t0),  # redelivered
    ]

    digest = build_digest("ava.ae", alerts, generated_at=t0 + timedelta(hours=4))

    assert [g.account_key for g in digest.groups] == ["acme.com", "beta.io", None]
    assert [a.alert_id for a in digest.groups[0].alerts] == ["a2", "a1"]
    assert digest.groups[1].label == "Beta"
    assert digest.groups[2].label == "Other alerts"
    assert digest.alert_count == 4
    assert set(digest.alert_ids) == {"a1", "a2", "b1", "x1"}
