"""What the current transaction holds locked, kept in memory for the rest of that transaction.

The consumer runs a batch of events in one transaction. Rows it locked (accounts, the pools) stay
locked until commit, so no other transaction can change them: their last read or write in this
transaction is the truth, and later events of the batch read it from here instead of the
database. Open handoffs can only be opened by a holder of the pool locks, so while they are held
counts only fall elsewhere: the counts kept here are never below the real ones.

The memory belongs to one transaction (see transaction_memory): a rollback or a new transaction
starts it afresh, so nothing outlives the locks it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_router.domain.model import AccountState, RoundRobinState
from tandem_shared.db import transaction_memory


@dataclass
class Held:
    """Rows this transaction has locked, as it last read or wrote them."""

    accounts: dict[str, AccountState] = field(default_factory=dict)
    round_robin: RoundRobinState | None = None  # set once the pools are locked
    open_handoffs: dict[str, int] | None = None  # per assignee, read under the pool locks

    def count_opened(self, assignee_id: str) -> None:
        """Count a handoff this transaction opened."""
        if self.open_handoffs is not None:
            self.open_handoffs[assignee_id] = self.open_handoffs.get(assignee_id, 0) + 1

    def count_closed(self, assignee_id: str) -> None:
        """Count a handoff this transaction closed."""
        if self.open_handoffs is not None and self.open_handoffs.get(assignee_id, 0) > 0:
            self.open_handoffs[assignee_id] -= 1


def held(session: AsyncSession) -> Held:
    """Return the memory of the session's current transaction (empty for a new one)."""
    return transaction_memory(session, "tandem_router.held", Held)
