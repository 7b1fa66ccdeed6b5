"""The TAL workflow endpoints: list, propose, validate, approve (finalize) and remove.

Each write runs in one transaction holding an advisory lock on the account: load the entry,
decide with the pure workflow, save it with its history, and put the resulting TAL event in
the outbox, so the event is published if and only if the decision committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import read_store, tal_store
from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import Gateway, GatewayDep
from tandem_api_gateway.api.errors import NotFound
from tandem_api_gateway.api.publishing import publish
from tandem_api_gateway.api.schemas import (
    NO_NUL,
    ApprovalIn,
    ErrorOut,
    PageOut,
    ProposalIn,
    RemovalIn,
    TalEntryOut,
    ValidationIn,
    page_out,
    to_tal_entry,
)
from tandem_api_gateway.domain import tal_workflow as wf
from tandem_api_gateway.domain.authz import Operation
from tandem_api_gateway.domain.cursor import MAX_PAGE_SIZE, CursorSpec, Pager
from tandem_api_gateway.domain.errors import InvalidInput
from tandem_shared import topics
from tandem_shared.accounts import account_key as normalize_account_key
from tandem_shared.events import EventType, IntentItem, Tier
from tandem_shared.uow import UnitOfWork

TAL_CURSOR = CursorSpec("tal", (str,))

Key = Annotated[str, Path(min_length=1, max_length=253, pattern=NO_NUL)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (403, 404, 409, 422)
}

router = APIRouter(
    prefix="/v1/tal",
    tags=["tal"],
    responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)


@router.get("")
async def list_entries(
    request: Request,
    gateway: GatewayDep,
    principal: PrincipalDep,
    status: wf.TalStatus | None = None,
    tier: Tier | None = None,
    cursor: Annotated[str | None, Query(max_length=1024, pattern=NO_NUL)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)] = None,
) -> PageOut[TalEntryOut]:
    """List TAL workflow entries by account key, with their decision history."""
    require(principal, Operation.READ_TAL)
    pager = Pager.start(TAL_CURSOR, cursor, limit, key=gateway.settings.cursor_key)
    async with gateway.read() as session:
        entries = await tal_store.list_entries(
            session,
            status=status.value if status else None,
            tier=tier.value if tier else None,
            after=pager.after_key,
            limit=pager.size,
        )
    page = pager.page(entries, lambda e: [e.account_key])
    return page_out([to_tal_entry(e) for e in page.items], page.next_cursor, url=request.url)


@router.get("/{account_key}", responses=_ERRORS)
async def get_entry(gateway: GatewayDep, principal: PrincipalDep, account_key: Key) -> TalEntryOut:
    """Return one account's TAL entry with every decision (who, when, why)."""
    require(principal, Operation.READ_TAL)
    async with gateway.read() as session:
        entry = await tal_store.load_entry(session, account_key, lock=False)
    if entry is None:
        raise NotFound(f"{account_key} is not on the TAL workflow")
    return to_tal_entry(entry)


@router.post("/proposals", status_code=201, responses=_ERRORS)
async def propose(gateway: GatewayDep, principal: PrincipalDep, body: ProposalIn) -> TalEntryOut:
    """Propose an account for the TAL with its fit and intent (observed intent by default)."""
    require(principal, Operation.PROPOSE_TAL)
    key = normalize_account_key(body.account_key)
    if key is None:
        raise InvalidInput(f"{body.account_key!r} is not a company domain")
    async with gateway.write() as uow:
        session = uow.session
        current = await _locked(session, key)
        intent = tuple(IntentItem(**i.model_dump()) for i in body.intent)
        if not intent:
            # Without intent in the request, the proposal carries what the providers observed.
            intent = await _observed_intent(session, key)
        proposal = wf.Proposal(
            account_key=key,
            suggested_tier=body.suggested_tier,
            reason=body.reason,
            name=body.name,
            fit_score=body.fit_score,
            intent=intent,
            marketer_id=body.marketer_id or principal.person_id,
            territory=body.territory,
        )
        entry = wf.propose(proposal, actor=principal, now=gateway.clock(), current=current)
        await tal_store.save_entry(session, entry, now=gateway.clock())
    return to_tal_entry(entry)


@router.post("/{account_key}/validation", responses=_ERRORS)
async def validate(
    gateway: GatewayDep, principal: PrincipalDep, account_key: Key, body: ValidationIn
) -> TalEntryOut:
    """Accept, reject or change the tier of a proposal, with a reason (sales)."""
    require(principal, Operation.VALIDATE_TAL)
    now = gateway.clock()
    async with _decision(gateway, account_key) as (uow, entry):
        if body.decision == "accept":
            entry = wf.accept(
                entry,
                actor=principal,
                now=now,
                reason=body.reason,
                ae_id=body.ae_id,
                sdr_id=body.sdr_id,
            )
        elif body.decision == "reject":
            entry = wf.reject(entry, actor=principal, now=now, reason=body.reason)
        else:
            if body.tier is None:
                raise InvalidInput("change_tier needs the new tier")
            entry = wf.change_tier(
                entry, actor=principal, now=now, tier=body.tier, reason=body.reason
            )
        await tal_store.save_entry(uow.session, entry, now=now)
    return to_tal_entry(entry)


@router.post("/{account_key}/approvals", responses=_ERRORS)
async def approve(
    gateway: GatewayDep, principal: PrincipalDep, account_key: Key, body: ApprovalIn
) -> TalEntryOut:
    """Approve an accepted entry for one side; the second side's approval finalizes it."""
    require(principal, Operation.FINALIZE_TAL)
    now = gateway.clock()
    async with _decision(gateway, account_key) as (uow, entry):
        result = wf.finalize(entry, actor=principal, side=body.side, now=now, reason=body.reason)
        await tal_store.save_entry(uow.session, result.entry, now=now)
        if result.finalized is not None:
            _publish(uow, result.entry, result.finalized, EventType.TAL_FINALIZED)
    return to_tal_entry(result.entry)


@router.post("/{account_key}/removal", responses=_ERRORS)
async def remove(
    gateway: GatewayDep, principal: PrincipalDep, account_key: Key, body: RemovalIn
) -> TalEntryOut:
    """Take a finalized account off the TAL, with a reason."""
    require(principal, Operation.REMOVE_FROM_TAL)
    now = gateway.clock()
    async with _decision(gateway, account_key) as (uow, entry):
        removed, event = wf.remove(entry, actor=principal, now=now, reason=body.reason)
        await tal_store.save_entry(uow.session, removed, now=now)
        _publish(uow, removed, event, EventType.TAL_REMOVED)
    return to_tal_entry(removed)


async def _observed_intent(session: AsyncSession, account_key: str) -> tuple[IntentItem, ...]:
    row = await read_store.get_account(session, account_key)
    observed: dict[str, dict[str, Any]] = row["intent"] if row else {}
    return tuple(
        IntentItem(topic=topic, provider=o["provider"], score=o["score"], surging=o["surging"])
        for topic, o in sorted(observed.items())
    )


async def _locked(session: AsyncSession, account_key: str) -> wf.TalEntry | None:
    # An advisory lock also serialises the first proposal of an account (no row to lock yet).
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(account_key))))
    return await tal_store.load_entry(session, account_key, lock=False)


@asynccontextmanager
async def _decision(
    gateway: Gateway, account_key: str
) -> AsyncIterator[tuple[UnitOfWork, wf.TalEntry]]:
    # A decision on an existing entry: one transaction holding the account's lock.
    async with gateway.write() as uow:
        entry = await _locked(uow.session, account_key)
        if entry is None:
            raise NotFound(f"{account_key} is not on the TAL workflow")
        yield uow, entry


def _publish(
    uow: UnitOfWork, entry: wf.TalEntry, payload: BaseModel, event_type: EventType
) -> None:
    # One event per decision: its id is derived from the decision's place in the history.
    name = f"tandem:tal:{entry.account_key}:{len(entry.history)}"
    publish(uow, topics.TAL, payload, type=event_type, subject=entry.account_key, name=name)
