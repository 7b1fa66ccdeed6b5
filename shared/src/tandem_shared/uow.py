"""One way to write: a unit of work is a transaction plus the events it emits.

Consumers, HTTP endpoints and workers all write through it, so an event leaves a service exactly
when the state change that caused it commits (the outbox rows go in with the same transaction).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_shared.envelope import Envelope
from tandem_shared.outbox import add_to_outbox, outbox_row


@dataclass
class UnitOfWork:
    """A transaction's session and the outbox rows it will commit with."""

    session: AsyncSession
    pending: list[dict[str, Any]] = field(default_factory=list)
    # Writes a handler deferred to the end of the transaction (one statement for a batch's rows).
    deferred: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def emit(self, topic: str, envelope: Envelope, headers: dict[str, str] | None = None) -> None:
        """Publish `envelope` on `topic` if, and only if, this transaction commits."""
        self.pending.append(outbox_row(topic, envelope, headers))

    def emit_rows(self, rows: list[dict[str, Any]]) -> None:
        """Publish prepared outbox rows with this transaction."""
        self.pending.extend(rows)

    def before_commit(self, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` in this transaction when it flushes, before it commits."""
        self.deferred.append(write)

    async def flush(self) -> None:
        """Run the deferred writes, then write the pending outbox rows in one insert (done for
        you on commit)."""
        deferred, self.deferred = self.deferred, []
        for write in deferred:
            await write()
        rows, self.pending = self.pending, []
        await add_to_outbox(self.session, rows)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[UnitOfWork]:
    """Open a session and a transaction; on a clean exit write the outbox rows and commit."""
    async with sessions() as session, session.begin():
        uow = UnitOfWork(session)
        yield uow
        await uow.flush()
