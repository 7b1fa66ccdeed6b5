"""The people directory shared by the router, the SLA monitor and alerts (loaded from YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


# An IANA time zone name, checked against the zone database.
TimeZoneName = Annotated[str, AfterValidator(_known_zone)]


class Role(StrEnum):
    AE = "ae"
    SDR = "sdr"
    MARKETER = "marketer"
    MANAGER = "manager"
    LEADER = "leader"
    REVOPS = "revops"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingHours(Strict):
    """Working days (ISO weekday numbers, Monday=1) and local hours."""

    days: tuple[int, ...] = (1, 2, 3, 4, 5)
    start: time = time(9, 0)
    end: time = time(17, 30)

    @model_validator(mode="after")
    def _check(self) -> WorkingHours:
        if not self.days or any(d < 1 or d > 7 for d in self.days):
            raise ValueError("days must be ISO weekdays 1..7")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start and end are local times, without a UTC offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Period(Strict):
    start: datetime
    end: datetime


class QuietHours(Strict):
    start: time
    end: time


class Preferences(Strict):
    """How a person wants to be told: channels per signal or alert kind, quiet hours, digest."""

    channels: tuple[Literal["slack", "email"], ...] = ("slack",)
    # Overrides keyed by signal (meeting_request, ...) or alert kind (sla_breach, ...).
    channels_by_kind: dict[str, tuple[Literal["slack", "email"], ...]] = Field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    digest: Literal["off", "hourly", "daily"] = "daily"
    digest_time: time = time(8, 30)  # local time of the daily digest


class Person(Strict):
    """A rep, marketer or leader, with what routing, SLA clocks and alerts need to know."""

    id: str
    name: str
    email: str
    role: Role
    team: Literal["sales", "marketing", "revops"]
    slack_user_id: str | None = None
    crm_user_ids: tuple[str, ...] = ()  # ids of this person in HubSpot / Salesforce
    manager_id: str | None = None
    timezone: TimeZoneName = "UTC"
    country: str = "US"
    subdivision: str | None = None  # for regional public holidays
    working_hours: WorkingHours = WorkingHours()
    out_of_office: tuple[Period, ...] = ()
    territories: tuple[str, ...] = ()
    capacity: int = 20  # open handoffs at most
    weight: int = 1  # share of round robin
    cover_id: str | None = None  # who takes urgent items during quiet hours and out of office
    active: bool = True
    preferences: Preferences = Preferences()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_out_of_office(self, at: datetime) -> bool:
        """Return True when `at` falls in one of the person's out-of-office periods."""
        return any(p.start <= at < p.end for p in self.out_of_office)


class Channel(Strict):
    """A named Slack channel or mailing list alerts can go to."""

    id: str
    slack_channel: str | None = None
    email: str | None = None


class Directory(Strict):
    """Everyone Tandem routes to or alerts, by id and by CRM user id."""

    people: tuple[Person, ...]
    channels: tuple[Channel, ...] = ()

    @model_validator(mode="after")
    def _check_refs(self) -> Directory:
        ids = [p.id for p in self.people]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate person ids: {sorted(dupes)}")
        known = set(ids)
        for p in self.people:
            for ref, value in (("manager_id", p.manager_id), ("cover_id", p.cover_id)):
                if value is not None and value not in known:
                    raise ValueError(f"{p.id}.{ref} names unknown person {value!r}")
        return self

    @cached_property
    def _by_id(self) -> dict[str, Person]:
        # Looked up on every render and routing decision: by key, not by scanning everyone.
        return {p.id: p for p in self.people}

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_by_id", None)  # a copy with other people indexes its own
        return copied

    def get(self, person_id: str) -> Person | None:
        """Return the person with this id, or None."""
        return self._by_id.get(person_id)

    def by_crm_user(self, crm_user_id: str) -> Person | None:
        """Return the person a CRM user id, person id or email address belongs to, or None.

        Sales-engagement tools (Outreach, a dialer's relay) name the rep by email.
        """
        email = crm_user_id.casefold() if "@" in crm_user_id else None
        return next(
            (
                p
                for p in self.people
                if crm_user_id == p.id
                or crm_user_id in p.crm_user_ids
                or (email is not None and p.email.casefold() == email)
            ),
            None,
        )

    def by_slack_user(self, slack_user_id: str) -> Person | None:
        """Return the person with this Slack user id, or None."""
        return next((p for p in self.people if p.slack_user_id == slack_user_id), None)

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def with_role(self, role: Role) -> list[Person]:
        return [p for p in self.people if p.role == role and p.active]

    def manager_chain(self, person_id: str) -> list[Person]:
        """Return the person's manager, their manager, and so on (no cycles)."""
        chain: list[Person] = []
        seen = {person_id}
        current = self.get(person_id)
        while current is not None and current.manager_id and current.manager_id not in seen:
            seen.add(current.manager_id)
            current = self.get(current.manager_id)
            if current is not None:
                chain.append(current)
        return chain


def load_directory(path: Path) -> Directory:
    """Load and validate the people directory from a YAML file."""
    with path.open(encoding="utf-8") as fh:
        return Directory.model_validate(yaml.safe_load(fh))
