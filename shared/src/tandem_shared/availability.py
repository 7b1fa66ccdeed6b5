"""Availability set at run time: out of office (and cover), capacity, working hours.

`people.yaml` seeds the directory; a change made at run time (API, Slack) is an event on
`tandem.people` that the router, the SLA monitor and alerts each store in their own schema
(`people_availability`, one row per person: the merged state) and apply over the seed, so a
reload of the YAML never undoes it. Handlers read the stored rows once per transaction, so every
replica decides with the latest change as soon as it is committed, whichever replica consumed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.db import Statement, fetch, transaction_memory
from tandem_shared.directory import Directory, Period, Person, WorkingHours
from tandem_shared.events import AvailabilityChanged

availability_metadata = sa.MetaData()

people_availability = sa.Table(
    "people_availability",
    availability_metadata,
    sa.Column("person_id", sa.Text, primary_key=True),
    sa.Column("state", JSONB, nullable=False),  # Availability
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)


def create_availability_table() -> None:
    """Alembic step: the run-time availability of people, in the service's schema."""
    availability_metadata.create_all(op.get_bind())


class Availability(BaseModel):
    """What run-time changes say about one person (None: the seed's value stands)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: str
    out_of_office: tuple[Period, ...] | None = None
    cover_id: str | None = None
    clear_cover: bool = False
    capacity: int | None = None
    working_hours: WorkingHours | None = None
    changed_at: datetime


def merge(current: Availability | None, change: AvailabilityChanged) -> Availability:
    """Return a person's availability after a change (an older change loses to a newer)."""
    if current is not None and current.changed_at > change.changed_at:
        return current
    base = current or Availability(person_id=change.person_id, changed_at=change.changed_at)
    update: dict[str, object] = {"changed_at": change.changed_at}
    if change.out_of_office is not None:
        update["out_of_office"] = tuple(change.out_of_office)
    if change.cover_id is not None:
        update |= {"cover_id": change.cover_id, "clear_cover": False}
    elif change.clear_cover:
        update |= {"cover_id": None, "clear_cover": True}
    if change.capacity is not None:
        update["capacity"] = change.capacity
    if change.working_hours is not None:
        update["working_hours"] = change.working_hours
    return base.model_copy(update=update)


def apply(directory: Directory, overrides: Mapping[str, Availability]) -> Directory:
    """Return the directory with each person's run-time availability over their seed."""
    if not overrides:
        return directory
    people = tuple(apply_person(p, overrides.get(p.id)) for p in directory.people)
    return directory.model_copy(update={"people": people})


def apply_person(person: Person, found: Availability | None) -> Person:
    """Return one person with their run-time availability over their seed."""
    if found is None:
        return person
    update: dict[str, object] = {}
    if found.out_of_office is not None:
        update["out_of_office"] = found.out_of_office
    if found.cover_id is not None or found.clear_cover:
        update["cover_id"] = found.cover_id
    if found.capacity is not None:
        update["capacity"] = found.capacity
    if found.working_hours is not None:
        update["working_hours"] = found.working_hours
    return person.model_copy(update=update)


async def record_change(session: AsyncSession, change: AvailabilityChanged) -> Availability:
    """Store a change merged into the person's stored availability; return the result."""
    row = (
        await session.execute(
            sa.select(people_availability.c.state)
            .where(people_availability.c.person_id == change.person_id)
            .with_for_update()
        )
    ).scalar()
    current = Availability.model_validate(row) if row is not None else None
    merged = merge(current, change)
    values = {"state": merged.model_dump(mode="json"), "changed_at": merged.changed_at}
    statement = insert(people_availability).values(person_id=change.person_id, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["person_id"], set_=values)
    )
    return merged


class LiveDirectory:
    """The seed directory with the stored run-time changes over it, read once per transaction."""

    def __init__(self, seed: Directory) -> None:
        self.seed = seed
        self._built: tuple[tuple[object, ...], Directory] = ((0, 0), seed)

    async def current(self, session: AsyncSession) -> Directory:
        """Return the directory as of this transaction (the seed when nothing was changed)."""
        return await transaction_memory(session, "tandem.live_directory", _Pending).get(
            self, session
        )

    async def _read(self, session: AsyncSession) -> Directory:
        # One row of two numbers says whether anything changed: a stored row's changed_at only
        # grows, so any new change moves the count or the sum. The rows are read only then.
        version = tuple((await fetch(session, _VERSION, {}))[0])
        if version != self._built[0]:
            rows = await fetch(session, _OVERRIDES, {})
            overrides = {r["person_id"]: Availability.model_validate(r["state"]) for r in rows}
            self._built = (version, apply(self.seed, overrides))
        return self._built[1]


# On the transaction's asyncpg connection: handlers read it in every transaction that routes.
_VERSION = Statement.of(
    "SELECT count(*), coalesce(sum(extract(epoch FROM changed_at)), 0) FROM people_availability"
)
_OVERRIDES = Statement.of("SELECT person_id, state FROM people_availability")


class _Pending:
    """One transaction's read of the changes (several live directories may share it)."""

    def __init__(self) -> None:
        self._read: dict[int, Directory] = {}

    async def get(self, live: LiveDirectory, session: AsyncSession) -> Directory:
        found = self._read.get(id(live))
        if found is None:
            found = self._read[id(live)] = await live._read(session)
        return found
