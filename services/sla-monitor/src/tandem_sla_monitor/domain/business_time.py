"""Business-time arithmetic in one person's calendar: working hours, holidays, time off."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel, ConfigDict, model_validator

from tandem_shared.directory import Period, Person, TimeZoneName, WorkingHours

# A calendar with no working time for this long is treated as broken, not as "very far away".
MAX_DAYS_WITHOUT_WORK = 400

Interval = tuple[datetime, datetime]


class NoWorkingTimeError(ValueError):
    """Raised when a calendar offers no working time within the search bound."""


class BusinessCalendar(BaseModel):
    """When a person works: local working hours, public holidays and out-of-office periods.

    Serializable, so a clock can snapshot the calendar it was started with. Naive
    out-of-office datetimes are read as local wall time in `timezone`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    working_hours: WorkingHours = WorkingHours()
    country: str | None = None
    subdivision: str | None = None
    out_of_office: tuple[Period, ...] = ()

    @classmethod
    def of(cls, person: Person) -> BusinessCalendar:
        """Return the calendar of a person from the directory."""
        return cls(
            timezone=person.timezone,
            working_hours=person.working_hours,
            country=person.country,
            subdivision=person.subdivision,
            out_of_office=person.out_of_office,
        )

    @model_validator(mode="after")
    def _known_holidays(self) -> BusinessCalendar:
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError("subdivision needs a country")
            return self
        problem = _holidays_unknown(self.country, self.subdivision)
        if problem is not None:
            raise ValueError(f"no public holidays known for {self.country}: {problem}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=256)
def _holidays_unknown(country: str, subdivision: str | None) -> str | None:
    """Return why no public holidays are known for a place, or None when they are.

    Cached: every clock read back carries a calendar, and building a holidays table per check
    took a millisecond.
    """
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=1024)
def holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Return the public holidays of a country (and subdivision) in one year."""
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def warm_calendars(people: Iterable[Person], years: Sequence[int]) -> int:
    """Load the holidays of the people's places in `years` now; return how many places.

    Done at start-up: the first clocks otherwise pay for loading each country's holiday rules
    (hundreds of milliseconds), and the first events of a burst with them. A place without
    holidays is left to the calendar that names it, which says why.
    """
    places = {(p.country, p.subdivision) for p in people if p.country is not None}
    for country, subdivision in places:
        if _holidays_unknown(country, subdivision) is None:
            for year in years:
                holiday_dates(country, subdivision, year)
    return len(places)


def add_business_seconds(start: datetime, seconds: int, calendar: BusinessCalendar) -> datetime:
    """Return the instant `seconds` of working time after `start` (in UTC)."""
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    start = _as_utc(start)
    if seconds == 0:
        return start
    remaining = timedelta(seconds=seconds)
    for opening, closing in _intervals_from(start, calendar):
        length = closing - opening
        if remaining <= length:
            return opening + remaining
        remaining -= length
    raise AssertionError("unreachable: _intervals_from never ends without raising")


def business_seconds_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> int:
    """Return the whole seconds of working time from `a` to `b` (0 when b is not after a)."""
    a, b = _as_utc(a), _as_utc(b)
    if b <= a:
        return 0
    zone = calendar.zone
    total = timedelta()
    day, last = a.astimezone(zone).date(), b.astimezone(zone).date()
    while day <= last:
        for opening, closing in _day_intervals(day, calendar):
            overlap = min(closing, b) - max(opening, a)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return int(total.total_seconds())


def is_working_time(at: datetime, calendar: BusinessCalendar) -> bool:
    """Return True when `at` falls inside the calendar's working time."""
    at = _as_utc(at)
    day = at.astimezone(calendar.zone).date()
    return any(opening <= at < closing for opening, closing in _day_intervals(day, calendar))


def _intervals_from(start: datetime, calendar: BusinessCalendar) -> Iterator[Interval]:
    """Yield the UTC working intervals at or after `start`, in order, clipped to `start`."""
    day = start.astimezone(calendar.zone).date()
    idle_days = 0
    while idle_days <= MAX_DAYS_WITHOUT_WORK:
        worked = False
        for opening, closing in _day_intervals(day, calendar):
            if closing > start:
                worked = True
                yield max(opening, start), closing
        idle_days = 0 if worked else idle_days + 1
        day += timedelta(days=1)
    raise NoWorkingTimeError(
        f"no working time within {MAX_DAYS_WITHOUT_WORK} days after {start.isoformat()}"
    )


def _day_intervals(day: date, calendar: BusinessCalendar) -> list[Interval]:
    """Return one local day's working time as UTC intervals, out-of-office removed."""
    hours = calendar.working_hours
    if day.isoweekday() not in hours.days or _is_holiday(day, calendar):
        return []
    # Working hours are wall-clock: build them in local time, then convert, so a DST day
    # keeps its 9:00-17:30 even though the day itself lasts 23 or 25 hours.
    zone = calendar.zone
    opening = datetime.combine(day, hours.start, tzinfo=zone).astimezone(UTC)
    closing = datetime.combine(day, hours.end, tzinfo=zone).astimezone(UTC)
    if closing <= opening:
        return []
    return _subtract((opening, closing), _time_off(calendar))


def _is_holiday(day: date, calendar: BusinessCalendar) -> bool:
    if calendar.country is None:
        return False
    return day in holiday_dates(calendar.country, calendar.subdivision, day.year)


def _time_off(calendar: BusinessCalendar) -> list[Interval]:
    zone = calendar.zone
    periods = (
        (_as_utc(p.start, default_zone=zone), _as_utc(p.end, default_zone=zone))
        for p in calendar.out_of_office
    )
    return sorted((start, end) for start, end in periods if end > start)


def _subtract(interval: Interval, holes: list[Interval]) -> list[Interval]:
    """Return what remains of `interval` once the sorted `holes` are cut out of it."""
    pieces: list[Interval] = []
    cursor, end = interval
    for hole_start, hole_end in holes:
        if hole_end <= cursor or hole_start >= end:
            continue
        if hole_start > cursor:
            pieces.append((cursor, hole_start))
        cursor = max(cursor, hole_end)
        if cursor >= end:
            return pieces
    pieces.append((cursor, end))
    return pieces


def _as_utc(value: datetime, *, default_zone: ZoneInfo | None = None) -> datetime:
    if value.tzinfo is None:
        if default_zone is None:
            raise ValueError(f"a timezone-aware datetime is required, got {value.isoformat()}")
        value = value.replace(tzinfo=default_zone)
    return value.astimezone(UTC)
