"""`POST /v1/handoffs/{id}/actions`: accept, reject, hand on, assign... with a person's key;
`GET /v1/handoffs/{id}/actions/{action_id}`: that action asked, then taken or refused.

The gateway checks first with what its read model knows (the shared policy, as Slack and email
do) and answers 403 at once to anyone who may not act; otherwise it publishes the request and
answers 202. The router, which owns assignments, decides for good: the outcome (taken or refused)
shows on the handoff (`action`), on the account's timeline, and by the action's id: the one
who asked, and whoever may read the handoff, see it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from fastapi import APIRouter
from pydantic import Field

from tandem_api_gateway.adapters import action_reads, read_store
from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import GatewayDep
from tandem_api_gateway.api.errors import NotFound
from tandem_api_gateway.api.publishing import publish
from tandem_api_gateway.api.read_routes import Id, visible_handoff
from tandem_api_gateway.api.schemas import NO_NUL, ErrorOut, Request, Response
from tandem_api_gateway.domain.authz import Operation, Principal
from tandem_api_gateway.domain.errors import NotPermitted
from tandem_shared import topics
from tandem_shared.events import (
    EventType,
    HandoffAction,
    HandoffActionRequested,
    HandOnTo,
    RejectReason,
)
from tandem_shared.handoff_policy import HandoffFacts, precheck

router = APIRouter(prefix="/v1", tags=["handoffs"])


class ActionIn(Request):
    action: HandoffAction
    hand_on_to: HandOnTo | None = None
    target_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    reason: RejectReason | None = None
    note: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)


class ActionRequestedOut(Response):
    action_id: str
    handoff_id: str
    action: HandoffAction
    actor_id: str
    requested_at: datetime


class ActionStatus(StrEnum):
    REQUESTED = "requested"  # the router has not answered yet
    TAKEN = "taken"
    REFUSED = "refused"


class ActionOut(Response):
    """One action asked for on a handoff, and the router's answer once given."""

    action_id: str
    handoff_id: str
    action: HandoffAction
    status: ActionStatus
    actor_id: str
    via: str
    hand_on_to: HandOnTo | None = None
    target_id: str | None = None
    reason: RejectReason | None = None
    note: str | None = None
    code: str | None = None  # done, or why not: not_permitted, already_done, closed, ...
    message: str | None = None
    assignee_id: str | None = None  # who owns the handoff after it (hidden from other reps)
    requested_at: datetime | None = None
    decided_at: datetime | None = None


@router.post(
    "/handoffs/{handoff_id}/actions",
    status_code=202,
    responses={code: {"model": ErrorOut} for code in (401, 403, 404, 422, 429)},
)
async def act_on_handoff(
    gateway: GatewayDep, principal: PrincipalDep, handoff_id: Id, body: ActionIn
) -> ActionRequestedOut:
    """Ask to act on a handoff (the assignee, their cover, or a manager of the account)."""
    require(principal, Operation.ACT_ON_HANDOFF)
    now = gateway.clock()
    async with gateway.write() as uow:
        row = await read_store.get_handoff(uow.session, handoff_id)
        if row is None:
            raise NotFound(f"handoff {handoff_id} not found")
        account = await read_store.get_account(uow.session, row["account_key"] or "")
        facts = facts_of_row(row, account)
        if gateway.directory is not None:
            verdict = precheck(
                action=body.action,
                actor_id=principal.person_id,
                facts=facts,
                directory=gateway.directory,
                hand_on_to=body.hand_on_to,
                target_id=body.target_id,
            )
            if not verdict.allowed:
                raise NotPermitted(verdict.message)
        # The same action on the same decision is the same request: a retry cannot double it.
        name = ":".join(
            (
                "tandem:action",
                handoff_id,
                row["decision_id"] or "",
                body.action.value,
                principal.person_id,
                body.hand_on_to.value if body.hand_on_to else "",
                body.target_id or "",
            )
        )
        action_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        request = HandoffActionRequested(
            action_id=action_id,
            handoff_id=handoff_id,
            action=body.action,
            actor_id=principal.person_id,
            via="api",
            hand_on_to=body.hand_on_to,
            target_id=body.target_id,
            reason=body.reason,
            note=body.note,
            requested_at=now,
        )
        publish(
            uow,
            topics.HANDOFF_ACTIONS,
            request,
            type=EventType.HANDOFF_ACTION_REQUESTED,
            subject=row["account_key"],
            name=name,
            time=now,
        )
    return ActionRequestedOut(
        action_id=action_id,
        handoff_id=handoff_id,
        action=body.action,
        actor_id=principal.person_id,
        requested_at=now,
    )


@router.get(
    "/handoffs/{handoff_id}/actions/{action_id}",
    responses={code: {"model": ErrorOut} for code in (401, 403, 404, 429)},
)
async def get_action(
    gateway: GatewayDep, principal: PrincipalDep, handoff_id: Id, action_id: Id
) -> ActionOut:
    """Return an action on a handoff: requested, taken or refused, by whom, when and why."""
    require(principal, Operation.READ_HANDOFFS)
    async with gateway.read() as session:
        row = await action_reads.get_action(session, action_id)
        if row is None or row["handoff_id"] != handoff_id:
            raise NotFound(f"action {action_id} of handoff {handoff_id} not found")
        if row["actor_id"] != principal.person_id:
            await visible_handoff(session, principal, handoff_id)  # else 404, as for the handoff
    return _action_out(row, principal)


def _action_out(row: dict[str, object], principal: Principal) -> ActionOut:
    out = ActionOut.model_validate({k: row[k] for k in ActionOut.model_fields if k in row})
    if principal.is_leader:
        return out
    # A rep sees who acted (as on the handoff), themselves, and whoever they named themselves.
    own = {principal.person_id}
    if out.actor_id == principal.person_id and out.target_id:
        own.add(out.target_id)
    hidden = {k: None for k in ("target_id", "assignee_id") if getattr(out, k) not in own}
    out = out.model_copy(update=hidden)
    return out


def facts_of_row(row: dict[str, object], account: dict[str, object] | None) -> HandoffFacts:
    """Return what the read model knows of a handoff, for the first check."""
    status, by = row.get("action_status"), row.get("last_action_by")
    owners = tuple(
        str(account[k]) for k in ("ae_id", "sdr_id") if account is not None and account.get(k)
    )
    unassigned = status == "unassigned"
    return HandoffFacts(
        handoff_id=str(row["handoff_id"]),
        assignee_id=None
        if unassigned
        else (str(row["assignee_id"]) if row["assignee_id"] else None),
        owner_ids=owners,
        acknowledged_by=str(by) if status == "acknowledged" and by else None,
        accepted_by=str(by) if status == "accepted" and by else None,
        closed=row.get("sla_outcome") == "met",
    )
