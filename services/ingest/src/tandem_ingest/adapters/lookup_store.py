"""The lookups queue: claim due lookups under a lease, finish them, or put them off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_ingest.adapters.tables import lookups
from tandem_ingest.domain.normalized import Lookup


@dataclass(frozen=True, slots=True)
class ClaimedLookup:
    """A lookup this worker holds until its lease ends."""

    lookup: Lookup
    source_name: str
    attempts: int  # including this one

    @property
    def event_id(self) -> str:
        return self.lookup.event_id


async def claim_due(session: AsyncSession, *, lease: timedelta, limit: int) -> list[ClaimedLookup]:
    """Take up to `limit` due lookups, oldest first: they are due again when the lease ends.

    SKIP LOCKED lets replicas claim side by side; the lease (not a held transaction) covers the
    API calls, so a worker that dies mid-fetch leaves its lookups to the next one. Every time is
    the database's, like the `due_at` a webhook's statement gives a new lookup: no clock skew
    between replicas and the database delays one.
    """
    now = sa.func.now()
    due = (
        sa.select(lookups.c.event_id)
        .where(lookups.c.due_at <= now)
        .order_by(lookups.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            sa.update(lookups)
            .where(lookups.c.event_id.in_(due))
            .values(due_at=now + lease, attempts=lookups.c.attempts + 1)
            .returning(
                lookups.c.source,
                lookups.c.dedupe_key,
                lookups.c.kind,
                lookups.c.request,
                lookups.c.source_name,
                lookups.c.attempts,
            )
        )
    ).all()
    return [
        ClaimedLookup(Lookup(r.source, r.dedupe_key, r.kind, r.request), r.source_name, r.attempts)
        for r in rows
    ]


async def finish(session: AsyncSession, event_ids: Sequence[str]) -> None:
    """Delete lookups whose event was written (or whose record is gone)."""
    if event_ids:
        await session.execute(sa.delete(lookups).where(lookups.c.event_id.in_(event_ids)))


async def put_off(
    session: AsyncSession,
    event_ids: Sequence[str],
    *,
    delay: timedelta,
    error: str,
    count_attempt: bool = True,
) -> None:
    """Make lookups due again after `delay`, noting why; a rate limit is not counted an attempt."""
    if not event_ids:
        return
    values: dict[str, object] = {"due_at": sa.func.now() + delay, "last_error": error[:1000]}
    if not count_attempt:
        values["attempts"] = lookups.c.attempts - 1
    await session.execute(
        sa.update(lookups).where(lookups.c.event_id.in_(event_ids)).values(**values)
    )


async def pending_count(session: AsyncSession) -> int:
    """Return how many lookups wait."""
    return int(
        (await session.execute(sa.select(sa.func.count()).select_from(lookups))).scalar_one()
    )
