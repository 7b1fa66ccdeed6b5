"""Reads of the handoffs table that actions on a handoff need."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.db import Statement, fetch

_STATUS = Statement.of("SELECT status FROM handoffs WHERE handoff_id = :handoff_id")


async def is_closed(session: AsyncSession, handoff_id: str) -> bool:
    """Return True when the handoff was closed (sales touched it); unknown ones are not."""
    rows = await fetch(session, _STATUS, {"handoff_id": handoff_id})
    return bool(rows) and rows[0][0] == "closed"
