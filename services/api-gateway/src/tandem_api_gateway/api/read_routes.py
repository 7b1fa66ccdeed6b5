"""Read endpoints: accounts and their timeline, handoffs, breaches, alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import read_store
from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import GatewayDep
from tandem_api_gateway.api.errors import NotFound
from tandem_api_gateway.api.schemas import (
    NO_NUL,
    AccountOut,
    AlertOut,
    ErrorOut,
    HandoffOut,
    MeOut,
    PageOut,
    TimelineEntryOut,
    page_out,
    to_account,
    to_alert,
    to_handoff,
)
from tandem_api_gateway.domain.authz import (
    Operation,
    Principal,
    may_read_alert,
    may_read_handoff,
)
from tandem_api_gateway.domain.cursor import MAX_PAGE_SIZE, CursorSpec, Pager
from tandem_shared.events import AlertKind, DeliveryChannel, Signal, Tier

ACCOUNTS = CursorSpec("accounts", (str,))
TIMELINE = CursorSpec("timeline", (datetime, int, str))
HANDOFFS = CursorSpec("handoffs", (datetime, str))
ALERTS = CursorSpec("alerts", (datetime, str))

Limit = Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]
Cursor = Annotated[
    str | None, Query(max_length=1024, pattern=NO_NUL, description="From next_cursor")
]
Key = Annotated[str, Path(min_length=1, max_length=253, pattern=NO_NUL)]
AccountKey = Annotated[str | None, Query(max_length=253, pattern=NO_NUL)]
Id = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


class HandoffOutcome(StrEnum):
    OPEN = "open"  # the SLA clock runs (no SLA event yet counts as open)
    MET = "met"
    BREACHED = "breached"


_OUTCOME = {
    HandoffOutcome.OPEN: "running",
    HandoffOutcome.MET: "met",
    HandoffOutcome.BREACHED: "breached",
}

router = APIRouter(prefix="/v1", responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}})


@router.get("/me", tags=["auth"])
async def me(principal: PrincipalDep) -> MeOut:
    """Return who the API key belongs to and its role."""
    return MeOut(person_id=principal.person_id, role=principal.role)


@router.get("/accounts", tags=["accounts"])
async def list_accounts(
    request: Request,
    gateway: GatewayDep,
    principal: PrincipalDep,
    tier: Tier | None = None,
    in_tal: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> PageOut[AccountOut]:
    """List accounts by key, filtered by tier and TAL membership."""
    require(principal, Operation.READ_ACCOUNTS)
    pager = Pager.start(ACCOUNTS, cursor, limit, key=gateway.settings.cursor_key)
    async with gateway.read() as session:
        rows = await read_store.list_accounts(
            session,
            tier=tier.value if tier else None,
            in_tal=in_tal,
            after=pager.after_key,
            limit=pager.size,
        )
    page = pager.page(rows, lambda r: [r["account_key"]])
    return page_out([to_account(r) for r in page.items], page.next_cursor, url=request.url)


@router.get("/accounts/{account_key}", tags=["accounts"], responses=_404)
async def get_account(gateway: GatewayDep, principal: PrincipalDep, account_key: Key) -> AccountOut:
    """Return one account with its owners, engagement, intent and open handoffs."""
    require(principal, Operation.READ_ACCOUNTS)
    async with gateway.read() as session:
        row = await read_store.get_account(session, account_key)
    if row is None:
        raise NotFound(f"account {account_key} not found")
    return to_account(row)


@router.get("/accounts/{account_key}/timeline", tags=["accounts"], responses=_404)
async def account_timeline(
    request: Request,
    gateway: GatewayDep,
    principal: PrincipalDep,
    account_key: Key,
    cursor: Cursor = None,
    limit: Limit = None,
) -> PageOut[TimelineEntryOut]:
    """Return the account's timeline, newest first; a rep sees only their own handoffs in it."""
    require(principal, Operation.READ_ACCOUNTS)
    pager = Pager.start(TIMELINE, cursor, limit, key=gateway.settings.cursor_key)
    async with gateway.read() as session:
        if await read_store.get_account(session, account_key) is None:
            raise NotFound(f"account {account_key} not found")
        rows = await read_store.list_timeline(
            session,
            account_key=account_key,
            visible_to=None if principal.is_leader else principal.person_id,
            after=pager.after,
            limit=pager.size,
        )
    page = pager.page(rows, lambda r: [r["at"], r["rank"], r["entry_id"]])
    items = [
        TimelineEntryOut(**{k: r[k] for k in TimelineEntryOut.model_fields}) for r in page.items
    ]
    return page_out(items, page.next_cursor, url=request.url)


@dataclass(frozen=True, slots=True)
class HandoffFilters:
    """The query parameters /handoffs and /breaches share, as one FastAPI dependency."""

    tier: Tier | None = None
    signal: Signal | None = None
    assignee: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None
    account_key: AccountKey = None
    cursor: Cursor = None
    limit: Limit = None


HandoffFiltersDep = Annotated[HandoffFilters, Depends()]


async def _handoff_page(
    request: Request,
    gateway: GatewayDep,
    principal: Principal,
    outcome: str | None,
    filters: HandoffFilters,
) -> PageOut[HandoffOut]:
    require(principal, Operation.READ_HANDOFFS)
    pager = Pager.start(HANDOFFS, filters.cursor, filters.limit, key=gateway.settings.cursor_key)
    async with gateway.read() as session:
        rows = await read_store.list_handoffs(
            session,
            visible_to=None if principal.is_leader else principal.person_id,
            outcome=outcome,
            tier=filters.tier.value if filters.tier else None,
            signal=filters.signal.value if filters.signal else None,
            assignee=filters.assignee,
            account_key=filters.account_key,
            after=pager.after,
            limit=pager.size,
        )
    page = pager.page(rows, lambda r: [r["sort_at"], r["handoff_id"]])
    now = gateway.clock()
    items = [to_handoff(r, principal=principal, now=now) for r in page.items]
    return page_out(items, page.next_cursor, url=request.url)


@router.get("/handoffs", tags=["handoffs"])
async def list_handoffs(
    request: Request,
    gateway: GatewayDep,
    principal: PrincipalDep,
    filters: HandoffFiltersDep,
    status: HandoffOutcome | None = None,
) -> PageOut[HandoffOut]:
    """List handoffs newest first with their SLA state; a rep sees only their own."""
    outcome = _OUTCOME[status] if status else None
    return await _handoff_page(request, gateway, principal, outcome, filters)


@router.get("/breaches", tags=["handoffs"])
async def list_breaches(
    request: Request, gateway: GatewayDep, principal: PrincipalDep, filters: HandoffFiltersDep
) -> PageOut[HandoffOut]:
    """List handoffs whose SLA was breached, newest first."""
    return await _handoff_page(request, gateway, principal, "breached", filters)


async def visible_handoff(
    session: AsyncSession, principal: Principal, handoff_id: str
) -> dict[str, Any]:
    """Return the handoff row, or raise NotFound when it is missing or not the caller's to see."""
    row = await read_store.get_handoff(session, handoff_id)
    if row is None or not may_read_handoff(
        principal, assignee_id=row["assignee_id"] or "", notified_ids=row["notified_ids"]
    ):
        raise NotFound(f"handoff {handoff_id} not found")
    return row


@router.get("/handoffs/{handoff_id}", tags=["handoffs"], responses=_404)
async def get_handoff(gateway: GatewayDep, principal: PrincipalDep, handoff_id: Id) -> HandoffOut:
    """Return one handoff with its SLA state and time remaining."""
    async with gateway.read() as session:
        row = await visible_handoff(session, principal, handoff_id)
    return to_handoff(row, principal=principal, now=gateway.clock())


@router.get("/alerts", tags=["alerts"])
async def list_alerts(
    request: Request,
    gateway: GatewayDep,
    principal: PrincipalDep,
    kind: AlertKind | None = None,
    channel: DeliveryChannel | None = None,
    account_key: AccountKey = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> PageOut[AlertOut]:
    """List alerts newest first with their delivery state; a rep sees only alerts sent to them."""
    require(principal, Operation.READ_ALERTS)
    pager = Pager.start(ALERTS, cursor, limit, key=gateway.settings.cursor_key)
    async with gateway.read() as session:
        rows = await read_store.list_alerts(
            session,
            visible_to=None if principal.is_leader else principal.person_id,
            kind=kind.value if kind else None,
            channel=channel.value if channel else None,
            account_key=account_key,
            after=pager.after,
            limit=pager.size,
        )
        page = pager.page(rows, lambda r: [r["sort_at"], r["alert_id"]])
        deliveries = await read_store.deliveries_of(session, [r["alert_id"] for r in page.items])
    items = [
        to_alert(r, deliveries.get(r["alert_id"], []), principal=principal) for r in page.items
    ]
    return page_out(items, page.next_cursor, url=request.url)


@router.get("/alerts/{alert_id}", tags=["alerts"], responses=_404)
async def get_alert(gateway: GatewayDep, principal: PrincipalDep, alert_id: Id) -> AlertOut:
    """Return one alert with its delivery state per recipient and channel."""
    async with gateway.read() as session:
        row = await read_store.get_alert(session, alert_id)
        if row is None or not may_read_alert(principal, recipient_ids=row["recipient_ids"]):
            raise NotFound(f"alert {alert_id} not found")
        deliveries = await read_store.deliveries_of(session, [alert_id])
    return to_alert(row, deliveries.get(alert_id, []), principal=principal)
