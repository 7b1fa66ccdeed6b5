"""Fan-out planning: preferences, transports, quiet hours, covers and digests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tandem_alerts.domain.plan import (
    DeliveryPlan,
    PlannedDelivery,
    Timing,
    Transports,
    available_again,
    idempotency_key,
    in_quiet_hours,
    plan_deliveries,
    priority,
    quiet_hours_end,
)
from tandem_shared.directory import Directory, Period, Person
from tandem_shared.events import AlertKind, DeliveryChannel, Signal, Tier, Urgency

NEW_YORK = ZoneInfo("America/New_York")
BOTH = Transports(slack=True, email=True)
DAYTIME = datetime(2024, 5, 14, 10, 0, tzinfo=NEW_YORK)
NIGHT = datetime(2024, 5, 14, 22, 0, tzinfo=NEW_YORK)


def by_channel(plan: DeliveryPlan) -> dict[tuple[str, DeliveryChannel], PlannedDelivery]:
    return {(d.recipient_id, d.channel): d for d in plan.deliveries}


def test_plans_each_preferred_channel_with_its_destination_and_key(directory, make_alert):
    plan = plan_deliveries(make_alert(), directory=directory, now=DAYTIME, transports=BOTH)

    got = by_channel(plan)
    assert set(got) == {("ava.ae", DeliveryChannel.SLACK), ("ava.ae", DeliveryChannel.EMAIL)}
    assert got["ava.ae", DeliveryChannel.SLACK].destination == "UAVA"
    assert got["ava.ae", DeliveryChannel.EMAIL].destination == "ava.ae@tandem.example"
    assert got["ava.ae", DeliveryChannel.SLACK].idempotency_key == "al-1:ava.ae:slack"
    assert all(d.timing is Timing.NOW for d in plan.deliveries)
    assert plan.failures == ()


def test_idempotency_key_names_alert_recipient_and_channel():
    assert idempotency_key("a", "p", DeliveryChannel.EMAIL) == "a:p:email"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"meeting_request": ("email",)}, {DeliveryChannel.EMAIL}),
        ({"handoff": ("slack",)}, {DeliveryChannel.SLACK}),
        # The alert kind is more specific than the signal, so it wins.
        ({"handoff": ("slack",), "meeting_request": ("email",)}, {DeliveryChannel.SLACK}),
        ({"sla_breach": ("email",)}, {DeliveryChannel.SLACK, DeliveryChannel.EMAIL}),
    ],
)
def test_channels_by_kind_override_the_default_channels(
    make_person, make_alert, overrides, expected
):
    person = make_person(
        "ava.ae", preferences={"channels": ["slack", "email"], "channels_by_kind": overrides}
    )
    plan = plan_deliveries(
        make_alert(kind=AlertKind.HANDOFF, signal=Signal.MEETING_REQUEST),
        directory=Directory(people=(person,)),
        now=DAYTIME,
        transports=BOTH,
    )
    assert {d.channel for d in plan.deliveries} == expected


def test_unknown_and_inactive_recipients_are_recorded_failures(directory, make_alert):
    alert = make_alert(recipient_ids=["ghost", "ava.ae", "old.ae"])

    plan = plan_deliveries(alert, directory=directory, now=DAYTIME, transports=BOTH)

    assert {d.recipient_id for d in plan.deliveries} == {"ava.ae"}
    assert [(f.recipient_id, f.error) for f in plan.failures] == [
        ("ghost", "unknown recipient"),
        ("old.ae", "recipient is inactive"),
    ]
    event = plan.failures[0].as_event(failed_at=DAYTIME)
    assert event.permanent and event.recipient_id == "ghost" and event.alert_id == "al-1"
    assert event.channel is None


def test_person_without_slack_account_is_emailed(directory, make_alert):
    plan = plan_deliveries(
        make_alert(recipient_ids=["nina.ae"]), directory=directory, now=DAYTIME, transports=BOTH
    )
    assert [(d.channel, d.destination) for d in plan.deliveries] == [
        (DeliveryChannel.EMAIL, "nina.ae@tandem.example")
    ]


def test_missing_transports_fall_back_to_the_log_sink_never_nowhere(directory, make_alert):
    none = Transports(slack=False, email=False)
    plan = plan_deliveries(make_alert(), directory=directory, now=DAYTIME, transports=none)

    assert [(d.channel, d.destination, d.idempotency_key) for d in plan.deliveries] == [
        (DeliveryChannel.LOG, "ava.ae", "al-1:ava.ae:log")
    ]


def test_only_the_missing_transport_goes_to_the_log(directory, make_alert):
    plan = plan_deliveries(
        make_alert(),
        directory=directory,
        now=DAYTIME,
        transports=Transports(slack=False, email=True),
    )
    assert {d.channel for d in plan.deliveries} == {DeliveryChannel.LOG, DeliveryChannel.EMAIL}


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(19, 59), False),
        (time(20, 0), True),
        (time(23, 30), True),
        (time(0, 0), True),
        (time(6, 59), True),
        (time(7, 0), False),
        (time(12, 0), False),
    ],
)
def test_quiet_hours_wrap_past_midnight(ava: Person, local: time, quiet: bool):
    at = datetime.combine(DAYTIME.date(), local, tzinfo=NEW_YORK).astimezone(UTC)
    assert in_quiet_hours(ava, at) is quiet


def test_quiet_hours_that_do_not_wrap(make_person):
    person = make_person("p", preferences={"quiet_hours": {"start": "12:00", "end": "13:00"}})
    assert in_quiet_hours(person, datetime(2024, 5, 14, 12, 30, tzinfo=UTC))
    assert not in_quiet_hours(person, datetime(2024, 5, 14, 13, 0, tzinfo=UTC))
    assert not in_quiet_hours(person, datetime(2024, 5, 14, 23, 0, tzinfo=UTC))


def test_quiet_hours_are_read_in_the_persons_own_time_zone(make_person):
    hours = {"quiet_hours": {"start": "20:00", "end": "07:00"}}
    paris = make_person("p", timezone="Europe/Paris", preferences=hours)
    new_york = make_person("n", timezone="America/New_York", preferences=hours)
    at = datetime(2024, 5, 14, 21, 0, tzinfo=UTC)  # 23:00 in Paris, 17:00 in New York
    assert in_quiet_hours(paris, at)
    assert not in_quiet_hours(new_york, at)


def test_normal_alert_in_quiet_hours_waits_for_the_digest(directory, make_alert):
    plan = plan_deliveries(
        make_alert(tier=Tier.T2), directory=directory, now=NIGHT, transports=BOTH
    )
    assert plan.deliveries
    assert all(d.timing is Timing.DIGEST for d in plan.deliveries)


def test_without_a_digest_a_quiet_hours_alert_waits_until_they_end(make_person, make_alert):
    person = make_person(
        "ava.ae",
        timezone="America/New_York",
        preferences={"digest": "off", "quiet_hours": {"start": "20:00", "end": "07:00"}},
    )
    plan = plan_deliveries(
        make_alert(), directory=Directory(people=(person,)), now=NIGHT, transports=BOTH
    )
    (delivery,) = plan.deliveries
    assert delivery.timing is Timing.LATER
    assert delivery.not_before == datetime(2024, 5, 15, 7, 0, tzinfo=NEW_YORK)


def test_quiet_hours_end_outside_quiet_hours_is_now(ava):
    assert quiet_hours_end(ava, DAYTIME) == DAYTIME


def test_urgent_tier_1_in_quiet_hours_goes_to_the_cover_now(directory, make_alert):
    alert = make_alert(urgency=Urgency.URGENT, tier=Tier.T1)

    plan = plan_deliveries(alert, directory=directory, now=NIGHT, transports=BOTH)

    got = by_channel(plan)
    cover = got["ben.ae", DeliveryChannel.SLACK]
    assert cover.timing is Timing.NOW
    assert cover.on_behalf_of == "ava.ae"
    assert cover.destination == "UBEN"
    # Ava still finds it when her quiet hours are over.
    assert got["ava.ae", DeliveryChannel.SLACK].timing is Timing.DIGEST


def test_urgent_tier_1_without_a_cover_reaches_the_person(make_person, make_alert):
    person = make_person(
        "ava.ae",
        timezone="America/New_York",
        preferences={"quiet_hours": {"start": "20:00", "end": "07:00"}},
    )
    plan = plan_deliveries(
        make_alert(urgency=Urgency.URGENT),
        directory=Directory(people=(person,)),
        now=NIGHT,
        transports=BOTH,
    )
    assert [(d.recipient_id, d.timing) for d in plan.deliveries] == [("ava.ae", Timing.NOW)]


def test_urgent_below_tier_1_breaks_quiet_hours_for_the_person(directory, make_alert):
    plan = plan_deliveries(
        make_alert(urgency=Urgency.URGENT, tier=Tier.T2),
        directory=directory,
        now=NIGHT,
        transports=BOTH,
    )
    assert {(d.recipient_id, d.timing) for d in plan.deliveries} == {("ava.ae", Timing.NOW)}


def test_low_urgency_goes_to_the_digest_even_in_working_hours(directory, make_alert):
    plan = plan_deliveries(
        make_alert(urgency=Urgency.LOW), directory=directory, now=DAYTIME, transports=BOTH
    )
    assert {d.timing for d in plan.deliveries} == {Timing.DIGEST}


def test_low_urgency_is_sent_now_when_the_digest_is_off(make_person, make_alert):
    person = make_person("p", preferences={"digest": "off"})
    plan = plan_deliveries(
        make_alert(urgency=Urgency.LOW, recipient_ids=["p"]),
        directory=Directory(people=(person,)),
        now=DAYTIME,
        transports=BOTH,
    )
    assert [d.timing for d in plan.deliveries] == [Timing.NOW]


def test_extra_channels_get_slack_and_email(directory, make_alert):
    plan = plan_deliveries(
        make_alert(recipient_ids=[], channel_ids=["abm-marketing", "nope", "empty"]),
        directory=directory,
        now=DAYTIME,
        transports=BOTH,
    )
    assert {(d.channel, d.destination) for d in plan.deliveries} == {
        (DeliveryChannel.SLACK, "C0ABM"),
        (DeliveryChannel.EMAIL, "abm@tandem.example"),
    }
    assert {d.recipient_id for d in plan.deliveries} == {"channel:abm-marketing"}
    assert [(f.recipient_id, f.error) for f in plan.failures] == [
        ("channel:nope", "unknown channel"),
        ("channel:empty", "channel has no Slack channel or email"),
    ]


def test_extra_channel_without_transports_goes_to_the_log(directory, make_alert):
    plan = plan_deliveries(
        make_alert(recipient_ids=[], channel_ids=["abm-marketing"]),
        directory=directory,
        now=DAYTIME,
        transports=Transports(slack=False, email=False),
    )
    assert [(d.channel, d.destination) for d in plan.deliveries] == [
        (DeliveryChannel.LOG, "channel:abm-marketing")
    ]


def test_repeated_recipients_and_a_cover_who_is_also_a_recipient_are_planned_once(
    directory, make_alert
):
    alert = make_alert(urgency=Urgency.URGENT, recipient_ids=["ava.ae", "ben.ae", "ava.ae"])

    plan = plan_deliveries(alert, directory=directory, now=NIGHT, transports=BOTH)

    keys = [d.idempotency_key for d in plan.deliveries]
    assert len(keys) == len(set(keys))
    assert "al-1:ben.ae:slack" in keys


def test_naive_now_is_refused(directory, make_alert):
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_deliveries(
            make_alert(), directory=directory, now=datetime(2024, 5, 14), transports=BOTH
        )


def test_priority_orders_by_urgency_then_real_time_before_bulk(make_alert) -> None:
    meeting = make_alert(urgency=Urgency.URGENT, signal=Signal.MEETING_REQUEST)
    surge = make_alert(urgency=Urgency.URGENT, signal=Signal.INTENT_SURGE)
    normal = make_alert(urgency=Urgency.NORMAL, signal=Signal.MEETING_REQUEST)
    low = make_alert(urgency=Urgency.LOW)
    ranks = [priority(a) for a in (meeting, surge, normal, low)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4, ranks


def _away(person: Person, days: int = 3) -> Person:
    """The person out of office from an hour before DAYTIME for `days` days."""
    start = DAYTIME - timedelta(hours=1)
    period = {"start": start, "end": start + timedelta(days=days)}
    return person.model_copy(update={"out_of_office": (Period.model_validate(period),)})


def test_out_of_office_an_urgent_item_of_any_tier_goes_to_the_cover(directory, make_alert):
    away = Directory(people=(_away(directory.get("ava.ae")), *directory.people[1:]))
    plan = plan_deliveries(
        make_alert(urgency=Urgency.URGENT, tier=Tier.T2),
        directory=away,
        now=DAYTIME,
        transports=BOTH,
    )
    got = by_channel(plan)
    assert got["ben.ae", DeliveryChannel.SLACK].timing is Timing.NOW
    assert got["ben.ae", DeliveryChannel.SLACK].on_behalf_of == "ava.ae"
    assert got["ava.ae", DeliveryChannel.SLACK].timing is Timing.DIGEST


def test_out_of_office_a_normal_item_waits_for_the_digest_in_working_hours(directory, make_alert):
    away = Directory(people=(_away(directory.get("ava.ae")), *directory.people[1:]))
    plan = plan_deliveries(make_alert(tier=Tier.T2), directory=away, now=DAYTIME, transports=BOTH)
    assert {(d.recipient_id, d.timing) for d in plan.deliveries} == {("ava.ae", Timing.DIGEST)}


def test_without_a_digest_an_item_for_someone_away_waits_until_they_are_back(
    make_person, make_alert
):
    person = _away(
        make_person("ava.ae", timezone="America/New_York", preferences={"digest": "off"})
    )
    plan = plan_deliveries(
        make_alert(), directory=Directory(people=(person,)), now=DAYTIME, transports=BOTH
    )
    (delivery,) = plan.deliveries
    assert delivery.timing is Timing.LATER
    assert delivery.not_before == person.out_of_office[0].end
    assert available_again(person, DAYTIME) == person.out_of_office[0].end


def test_urgent_out_of_office_without_a_cover_reaches_the_person(make_person, make_alert):
    person = _away(make_person("ava.ae"))
    plan = plan_deliveries(
        make_alert(urgency=Urgency.URGENT),
        directory=Directory(people=(person,)),
        now=DAYTIME,
        transports=BOTH,
    )
    assert [(d.recipient_id, d.timing) for d in plan.deliveries] == [("ava.ae", Timing.NOW)]


def test_a_cover_who_is_away_too_is_passed_over(directory, make_alert):
    people = {p.id: p for p in directory.people}
    people["ava.ae"], people["ben.ae"] = _away(people["ava.ae"]), _away(people["ben.ae"])
    plan = plan_deliveries(
        make_alert(urgency=Urgency.URGENT),
        directory=Directory(people=tuple(people.values()), channels=directory.channels),
        now=DAYTIME,
        transports=BOTH,
    )
    assert {d.recipient_id for d in plan.deliveries} == {"ava.ae"}
