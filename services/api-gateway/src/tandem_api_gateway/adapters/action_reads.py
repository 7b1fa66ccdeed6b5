"""Reads of the action and availability projections (action_projections, people_projections)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.tables import handoff_action_requests
from tandem_shared.availability import Availability, people_availability


async def get_action(session: AsyncSession, action_id: str) -> dict[str, Any] | None:
    """Return one action asked for on a handoff, with its answer once the router gave it."""
    query = sa.select(handoff_action_requests).where(
        handoff_action_requests.c.action_id == action_id
    )
    row = (await session.execute(query)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def get_availability(session: AsyncSession, person_id: str) -> Availability | None:
    """Return what run-time changes say about a person (None: nothing changed at run time)."""
    query = sa.select(people_availability.c.state).where(
        people_availability.c.person_id == person_id
    )
    state = (await session.execute(query)).scalar()
    return Availability.model_validate(state) if state is not None else None
