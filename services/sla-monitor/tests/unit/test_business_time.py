from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tandem_shared.directory import Period, Person, WorkingHours
from tandem_sla_monitor.domain.business_time import (
    BusinessCalendar,
    NoWorkingTimeError,
    add_business_seconds,
    business_seconds_between,
    holiday_dates,
    is_working_time,
)

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
MINUTE = 60
HOUR = 3600

NY = BusinessCalendar(timezone="America/New_York", country="US")
FR = BusinessCalendar(timezone="Europe/Paris", country="FR")
EVERY_DAY = WorkingHours(days=(1, 2, 3, 4, 5, 6, 7))


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def test_within_working_hours_adds_wall_time() -> None:
    assert add_business_seconds(ny(2026, 3, 2, 10, 0), 15 * MINUTE, NY) == ny(2026, 3, 2, 10, 15)


def test_deadline_returns_utc() -> None:
    deadline = add_business_seconds(ny(2026, 3, 2, 10, 0), 15 * MINUTE, NY)
    assert deadline.tzinfo is UTC


def test_night_carries_over_to_next_opening() -> None:
    # 10 minutes before the 17:30 close, 20 after the 9:00 opening.
    assert add_business_seconds(ny(2026, 3, 2, 17, 20), 30 * MINUTE, NY) == ny(2026, 3, 3, 9, 20)


def test_deadline_at_close_stays_at_close() -> None:
    assert add_business_seconds(ny(2026, 3, 2, 17, 0), 30 * MINUTE, NY) == ny(2026, 3, 2, 17, 30)


def test_weekend_is_skipped() -> None:
    assert add_business_seconds(ny(2026, 3, 13, 17, 0), HOUR, NY) == ny(2026, 3, 16, 9, 30)


def test_start_outside_hours_counts_from_next_opening() -> None:
    saturday_noon = ny(2026, 3, 14, 12, 0)
    assert add_business_seconds(saturday_noon, 15 * MINUTE, NY) == ny(2026, 3, 16, 9, 15)
    early_monday = ny(2026, 3, 16, 6, 0)
    assert add_business_seconds(early_monday, 15 * MINUTE, NY) == ny(2026, 3, 16, 9, 15)


def test_zero_seconds_is_the_start_itself() -> None:
    saturday = ny(2026, 3, 14, 12, 0)
    assert add_business_seconds(saturday, 0, NY) == saturday


def test_us_thanksgiving_is_not_a_working_day() -> None:
    wednesday_before = ny(2026, 11, 25, 17, 0)
    assert add_business_seconds(wednesday_before, HOUR, NY) == ny(2026, 11, 27, 9, 30)
    assert business_seconds_between(ny(2026, 11, 26, 0, 0), ny(2026, 11, 27, 0, 0), NY) == 0


def test_french_national_day_is_not_a_working_day() -> None:
    monday_before = paris(2026, 7, 13, 17, 0)
    assert add_business_seconds(monday_before, HOUR, FR) == paris(2026, 7, 15, 9, 30)


def test_holidays_are_those_of_the_calendar_country() -> None:
    # 14 July is an ordinary Tuesday in New York.
    assert add_business_seconds(ny(2026, 7, 14, 9, 0), HOUR, NY) == ny(2026, 7, 14, 10, 0)


def test_subdivision_holidays_apply() -> None:
    massachusetts = BusinessCalendar(timezone="America/New_York", country="US", subdivision="MA")
    patriots_day = date(2026, 4, 20)
    assert patriots_day in holiday_dates("US", "MA", 2026)
    assert patriots_day not in holiday_dates("US", None, 2026)
    assert add_business_seconds(ny(2026, 4, 17, 17, 0), HOUR, massachusetts) == ny(
        2026, 4, 21, 9, 30
    )


def test_same_instant_gives_different_deadlines_in_different_zones() -> None:
    start = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York, 16:00 in Paris
    assert add_business_seconds(start, 2 * HOUR, NY) == ny(2026, 3, 3, 12, 0)
    assert add_business_seconds(start, 2 * HOUR, FR) == paris(2026, 3, 4, 9, 30)


@pytest.mark.parametrize(
    ("zone", "saturday", "sunday_opening_utc"),
    [
        ("America/New_York", date(2026, 3, 7), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 10, 31), datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),
        ("Europe/Paris", date(2026, 3, 28), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
    ],
)
def test_daylight_saving_change_keeps_wall_clock_hours(
    zone: str, saturday: date, sunday_opening_utc: datetime
) -> None:
    calendar = BusinessCalendar(timezone=zone, working_hours=EVERY_DAY)
    saturday_close = datetime.combine(saturday, time(17, 30), tzinfo=ZoneInfo(zone))
    # One hour into Sunday is 10:00 local, whatever the UTC offset became overnight.
    deadline = add_business_seconds(saturday_close, HOUR, calendar)
    assert deadline == sunday_opening_utc + timedelta(hours=1)
    assert deadline.astimezone(ZoneInfo(zone)).time() == time(10, 0)


@pytest.mark.parametrize(
    ("day", "hours_of_work"),
    [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 3, 9), 24)],
)
def test_a_dst_day_lasts_23_or_25_hours(day: date, hours_of_work: int) -> None:
    # A round-the-clock calendar: from midnight to 23:59:59 wall time, plus the final second.
    calendar = BusinessCalendar(
        timezone="America/New_York",
        working_hours=WorkingHours(days=EVERY_DAY.days, start=time(0), end=time(23, 59, 59)),
    )
    start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=NEW_YORK)
    assert business_seconds_between(start, end, calendar) == hours_of_work * HOUR - 1


def test_weekend_spanning_the_dst_change_counts_only_working_hours() -> None:
    friday_4pm, monday_10am = ny(2026, 3, 6, 16, 0), ny(2026, 3, 9, 10, 0)
    assert business_seconds_between(friday_4pm, monday_10am, NY) == int(2.5 * HOUR)


def test_out_of_office_days_are_not_working_time() -> None:
    away = Period(start=datetime(2026, 3, 3, 0, 0), end=datetime(2026, 3, 5, 0, 0))  # local
    calendar = NY.model_copy(update={"out_of_office": (away,)})
    assert add_business_seconds(ny(2026, 3, 2, 17, 0), HOUR, calendar) == ny(2026, 3, 5, 9, 30)


def test_out_of_office_part_of_a_day_is_cut_out() -> None:
    lunch = Period(start=ny(2026, 3, 2, 12, 0), end=ny(2026, 3, 2, 13, 0))
    calendar = NY.model_copy(update={"out_of_office": (lunch,)})
    assert add_business_seconds(ny(2026, 3, 2, 11, 30), HOUR, calendar) == ny(2026, 3, 2, 13, 30)
    assert business_seconds_between(ny(2026, 3, 2, 11, 0), ny(2026, 3, 2, 14, 0), calendar) == (
        2 * HOUR
    )
    assert not is_working_time(ny(2026, 3, 2, 12, 30), calendar)
    assert is_working_time(ny(2026, 3, 2, 13, 0), calendar)


def test_calendar_without_working_time_fails_instead_of_searching_forever() -> None:
    forever = Period(start=ny(2026, 1, 1, 0, 0), end=ny(2030, 1, 1, 0, 0))
    calendar = NY.model_copy(update={"out_of_office": (forever,)})
    with pytest.raises(NoWorkingTimeError):
        add_business_seconds(ny(2026, 3, 2, 10, 0), HOUR, calendar)


def test_between_is_zero_when_the_end_is_not_after_the_start() -> None:
    assert business_seconds_between(ny(2026, 3, 2, 12, 0), ny(2026, 3, 2, 11, 0), NY) == 0


def test_naive_and_negative_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_seconds(datetime(2026, 3, 2, 10, 0), HOUR, NY)
    with pytest.raises(ValueError, match="negative"):
        add_business_seconds(ny(2026, 3, 2, 10, 0), -1, NY)


def test_holidays_are_cached_per_country_subdivision_and_year() -> None:
    holiday_dates("FR", None, 2031)
    hits = holiday_dates.cache_info().hits
    assert date(2031, 7, 14) in holiday_dates("FR", None, 2031)
    assert holiday_dates.cache_info().hits == hits + 1


def test_calendar_of_a_person_carries_their_calendar() -> None:
    chloe = Person(
        id="chloe.ae",
        name="Chloé",
        email="chloe@tandem.example",
        role="ae",
        team="sales",
        timezone="Europe/Paris",
        country="FR",
        working_hours=WorkingHours(days=(1, 2, 3, 4), start=time(8, 0), end=time(16, 0)),
    )
    calendar = BusinessCalendar.of(chloe)
    assert (calendar.timezone, calendar.country) == ("Europe/Paris", "FR")
    # Friday is not one of her days.
    assert add_business_seconds(paris(2026, 3, 5, 15, 0), 2 * HOUR, calendar) == paris(
        2026, 3, 9, 9, 0
    )


@pytest.mark.parametrize(
    "fields",
    [{"timezone": "Mars/Olympus"}, {"country": "XX"}, {"country": "US", "subdivision": "ZZ"}],
)
def test_calendar_rejects_unknown_zones_and_countries(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        BusinessCalendar.model_validate(fields)


@settings(deadline=None, max_examples=150)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    seconds=st.integers(min_value=0, max_value=30 * 8 * HOUR),
    calendar=st.sampled_from([NY, FR]),
)
def test_between_inverts_add(start: datetime, seconds: int, calendar: BusinessCalendar) -> None:
    start = start.replace(microsecond=0)
    deadline = add_business_seconds(start, seconds, calendar)
    assert business_seconds_between(start, deadline, calendar) == seconds
    if seconds:
        assert is_working_time(deadline - timedelta(seconds=1), calendar)
