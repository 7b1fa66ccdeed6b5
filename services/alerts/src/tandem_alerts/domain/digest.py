"""Digests: when a person's next one is due, and how pending low-priority alerts are grouped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from tandem_shared.directory import Person
from tandem_shared.events import AlertRequested

# Every real UTC offset is a multiple of 15 minutes, so a local top of the hour is one of these.
_QUARTER = timedelta(minutes=15)


class AccountGroup(BaseModel):
    """The pending alerts of one account, newest first."""

    model_config = ConfigDict(frozen=True)

    account_key: str | None
    account_name: str | None
    alerts: tuple[AlertRequested, ...]

    @property
    def label(self) -> str:
        """Return the account's display name."""
        return self.account_name or self.account_key or "Other alerts"

    @property
    def latest_at(self) -> datetime:
        """Return when the newest alert of the group was requested."""
        return self.alerts[0].requested_at


class Digest(BaseModel):
    """One digest for one person: alerts grouped by account, the most recent account first."""

    model_config = ConfigDict(frozen=True)

    recipient_id: str
    generated_at: datetime
    groups: tuple[AccountGroup, ...]

    @property
    def alert_count(self) -> int:
        """Return how many alerts the digest carries."""
        return sum(len(g.alerts) for g in self.groups)

    @property
    def alert_ids(self) -> tuple[str, ...]:
        """Return the ids of every alert in the digest (to mark them delivered)."""
        return tuple(a.alert_id for g in self.groups for a in g.alerts)


def next_digest_at(person: Person, *, after: datetime) -> datetime | None:
    """Return the first digest time strictly after `after`, or None when digests are off."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    prefs = person.preferences
    if prefs.digest == "hourly":
        return _next_local_top_of_hour(person.zone, after)
    if prefs.digest == "daily":
        return _next_daily(person, after)
    return None


def is_digest_due(person: Person, *, last_sent_at: datetime | None, now: datetime) -> bool:
    """Return True when a digest time has passed since the last digest was sent."""
    if person.preferences.digest == "off":
        return False
    if last_sent_at is None:
        return True
    due = next_digest_at(person, after=last_sent_at)
    return due is not None and due <= now


def build_digest(
    recipient_id: str, alerts: Iterable[AlertRequested], *, generated_at: datetime
) -> Digest:
    """Group pending alerts by account, newest first, counting each alert once."""
    unique = {a.alert_id: a for a in alerts}.values()
    by_account: dict[str | None, list[AlertRequested]] = {}
    for alert in sorted(unique, key=lambda a: a.requested_at, reverse=True):
        by_account.setdefault(alert.account_key, []).append(alert)
    groups = [
        AccountGroup(
            account_key=key,
            account_name=next((a.account_name for a in items if a.account_name), None),
            alerts=tuple(items),
        )
        for key, items in by_account.items()
    ]
    # Alerts without an account go last, whatever their age.
    groups.sort(key=lambda g: (g.account_key is not None, g.latest_at), reverse=True)
    return Digest(recipient_id=recipient_id, generated_at=generated_at, groups=tuple(groups))


def _next_local_top_of_hour(zone: ZoneInfo, after: datetime) -> datetime:
    start = after.astimezone(UTC)
    candidate = start.replace(minute=(start.minute // 15) * 15, second=0, microsecond=0)
    for _ in range(8):
        candidate += _QUARTER
        if candidate > start and candidate.astimezone(zone).minute == 0:
            return candidate
    # Only historical local-mean-time offsets get here: fall back to the UTC hour.
    return start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _next_daily(person: Person, after: datetime) -> datetime:
    local_day = after.astimezone(person.zone).date()
    candidate = _daily_on(person, local_day)
    if candidate <= after:
        candidate = _daily_on(person, local_day + timedelta(days=1))
    return candidate


def _daily_on(person: Person, day: date) -> datetime:
    wall = datetime.combine(day, person.preferences.digest_time, tzinfo=person.zone)
    # Through UTC: a wall time inside a DST gap resolves with the pre-transition offset
    # (02:30 becomes 03:30), an ambiguous one (fold=0) with its first occurrence.
    return wall.astimezone(UTC)
