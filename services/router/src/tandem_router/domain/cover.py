"""Cover for an out-of-office AE: who takes their tier 1 handoffs (and tier 2 FYIs) meanwhile.

An AE on holiday would otherwise hold a meeting request whose SLA clock waits for their return, so
the router hands it to the AE's cover (people.yaml `cover_id`) when the cover can take it now.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tandem_router.domain.round_robin import OUT_OF_OFFICE, why_not_now
from tandem_shared.directory import Directory, Person


@dataclass(frozen=True)
class Cover:
    """Who stands in for an away AE (None: nobody can, see `reason`) and why."""

    person: Person | None
    reason: str


def away_until(person: Person, at: datetime) -> datetime | None:
    """Return when the person's out-of-office run around `at` ends, or None when they are in."""
    end: datetime | None = None
    periods = sorted(person.out_of_office, key=lambda p: p.start)
    for period in periods:
        # Back-to-back or overlapping periods are one absence: report the day they are back.
        if period.start <= (end or at) < period.end:
            end = period.end
    return end


def away_note(person: Person, at: datetime) -> str | None:
    """Return "<id> is out of office until <end>" when the person is away at `at`, else None."""
    end = away_until(person, at)
    if end is None:
        return None
    return f"{person.id} is out of office until {end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def find_cover(
    person: Person,
    *,
    directory: Directory,
    open_handoffs: Mapping[str, int],
    now: datetime,
    enforce_working_hours: bool,
    exclude: Collection[str] = (),
) -> Cover:
    """Return the person's cover when they are in sales and available now, else why not."""
    if person.cover_id is None:
        return Cover(None, f"{person.id} has no cover")
    cover = directory.get(person.cover_id)
    if cover is None:
        return Cover(None, f"cover {person.cover_id} is not in the directory")
    if cover.team != "sales":
        return Cover(None, f"cover {cover.id} is not in sales ({cover.role.value})")
    why_not = why_not_now(
        cover,
        now=now,
        open_handoffs=open_handoffs,
        enforce_working_hours=enforce_working_hours,
        exclude=exclude,
    )
    if why_not == OUT_OF_OFFICE:
        return Cover(None, f"cover {away_note(cover, now)}")
    if why_not is not None:
        return Cover(None, f"cover {cover.id} is {why_not}")
    return Cover(cover, f"handed to cover {cover.id}")
