"""Read-only operator endpoints: a decision's explanation trail and an account's router state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_router.adapters import repository
from tandem_router.domain.model import AccountState
from tandem_shared.events import RoutingDecided


class DecisionView(BaseModel):
    decision_id: str
    event_id: str
    handoff_id: str
    account_key: str | None
    rule_set_version: str
    assignee_id: str
    decided_at: datetime
    explanation: list[str]
    routing: RoutingDecided


class AccountView(BaseModel):
    account_key: str
    updated_at: datetime
    state: AccountState


def decisions_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """Return the routes operators read decisions and account states from."""
    router = APIRouter(prefix="/v1", tags=["decisions"])

    @router.get("/decisions/{decision_id}")
    async def get_decision(decision_id: str) -> DecisionView:
        async with sessions() as session:
            found: dict[str, Any] | None = await repository.get_decision(session, decision_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no decision {decision_id}")
        return DecisionView.model_validate(found)

    @router.get("/accounts/{account_key}/state")
    async def get_account_state(account_key: str) -> AccountView:
        key = account_key.strip().lower()
        async with sessions() as session:
            found = await repository.get_account(session, key)
        if found is None:
            raise HTTPException(status_code=404, detail=f"the router has no state for {key}")
        return AccountView(account_key=key, updated_at=found.updated_at, state=found.state)

    return router
