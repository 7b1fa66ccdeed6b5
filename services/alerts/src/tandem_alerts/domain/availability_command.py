"""`/tandem` in Slack: a rep sets their own availability in words.

    /tandem ooo until friday            out of office from now to the end of Friday
    /tandem ooo from monday until 12 may cover ben.ae
    /tandem back                        no longer out of office
    /tandem capacity 10                 open handoffs at most
    /tandem hours 08:00-16:30           working hours (days unchanged)

Dates are read by dateparser in the person's time zone, relative to now, preferring the future;
a date without a time means the whole day (until friday: until Saturday 00:00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import dateparser

from tandem_shared.directory import Directory, Period, Person, WorkingHours

HELP = (
    "Try `/tandem ooo until friday`, `/tandem ooo from monday until 12 may cover ben.ae`, "
    "`/tandem back`, `/tandem capacity 10` or `/tandem hours 08:00-16:30`."
)
_OOO = re.compile(
    r"^(?:ooo|out|away)\s+(?:from\s+(?P<start>.+?)\s+)?(?:until|till|to)\s+(?P<end>.+?)"
    r"(?:\s+cover\s+@?(?P<cover>\S+))?$",
    re.IGNORECASE,
)
_HOURS = re.compile(r"^hours\s+(\d{1,2}(?::\d{2})?)\s*-\s*(\d{1,2}(?::\d{2})?)$", re.IGNORECASE)


class CommandError(ValueError):
    """The text is not a command Tandem understands; the message says what would be."""


@dataclass(frozen=True)
class AvailabilityChange:
    """What a command changes (None: unchanged; an empty out_of_office: back)."""

    out_of_office: list[Period] | None = None
    cover_id: str | None = None
    capacity: int | None = None
    working_hours: WorkingHours | None = None
    summary: str = ""


def parse_command(
    text: str, *, person: Person, directory: Directory, now: datetime
) -> AvailabilityChange:
    """Return the change a `/tandem` text asks for; raise CommandError with help otherwise."""
    words = " ".join(text.split())
    if words.lower() in ("back", "i'm back", "im back"):
        return AvailabilityChange(
            out_of_office=[], summary="You are back: handoffs come to you again."
        )
    if match := re.match(r"^capacity\s+(\d{1,4})$", words, re.IGNORECASE):
        capacity = int(match[1])
        return AvailabilityChange(
            capacity=capacity, summary=f"Capacity set to {capacity} open handoffs."
        )
    if match := _HOURS.match(words):
        start, end = _clock(match[1]), _clock(match[2])
        try:
            hours = person.working_hours.model_copy(update={"start": start, "end": end})
            hours = WorkingHours.model_validate(hours.model_dump())
        except ValueError as exc:
            raise CommandError(f"Working hours must end after they start. {HELP}") from exc
        return AvailabilityChange(
            working_hours=hours, summary=f"Working hours set to {start:%H:%M}-{end:%H:%M}."
        )
    if match := _OOO.match(words):
        return _out_of_office(match, person=person, directory=directory, now=now)
    raise CommandError(f"Tandem did not understand `{words}`. {HELP}")


def _out_of_office(
    match: re.Match[str], *, person: Person, directory: Directory, now: datetime
) -> AvailabilityChange:
    start = _moment(match["start"], person, now, end_of_day=False) if match["start"] else now
    end = _moment(match["end"], person, now, end_of_day=True)
    if end <= start:
        raise CommandError("The end of your time away must be after its start.")
    cover_id = match["cover"]
    if cover_id is not None:
        cover = directory.get(cover_id)
        if cover is None or not cover.active or cover.id == person.id:
            raise CommandError(f"{cover_id} cannot cover for you: name a teammate's Tandem id.")
    covered = cover_id or person.cover_id
    who = f"; {covered} covers" if covered else "; no cover set (handoffs take their usual path)"
    local = end.astimezone(person.zone)
    return AvailabilityChange(
        out_of_office=[Period(start=start, end=end)],
        cover_id=cover_id,
        summary=f"Out of office until {local:%a %d %b %H:%M %Z}{who}.",
    )


def _moment(text: str, person: Person, now: datetime, *, end_of_day: bool) -> datetime:
    settings = {
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.astimezone(person.zone).replace(tzinfo=None),
        "TIMEZONE": person.timezone,
        "RETURN_AS_TIMEZONE_AWARE": True,
    }
    found: datetime | None = dateparser.parse(text, languages=["en"], settings=settings)
    if found is None:
        raise CommandError(f"Tandem could not read the date `{text}`. {HELP}")
    local: datetime = found.astimezone(person.zone)
    if end_of_day and local.time() == time(0, 0):
        local = (local + timedelta(days=1)).replace(hour=0, minute=0)
    return local


def _clock(text: str) -> time:
    hour, _, minute = text.partition(":")
    try:
        return time(int(hour), int(minute or 0))
    except ValueError as exc:
        raise CommandError(f"`{text}` is not a time of day. {HELP}") from exc
