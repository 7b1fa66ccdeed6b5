"""`POST /v1/handoffs/{id}/acknowledgement`: the assignee (or a sales lead) takes the handoff.

The same event as Slack's Acknowledge button (`tandem.handoff.acknowledged`, via "api") goes to
the outbox in one transaction, so the SLA monitor pauses escalation exactly as for a click.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import GatewayDep
from tandem_api_gateway.api.publishing import publish
from tandem_api_gateway.api.read_routes import Id, visible_handoff
from tandem_api_gateway.api.schemas import ErrorOut, Response
from tandem_api_gateway.domain.authz import Operation, may_acknowledge_handoff
from tandem_api_gateway.domain.errors import NotPermitted
from tandem_shared import topics
from tandem_shared.events import EventType, HandoffAcknowledged

router = APIRouter(prefix="/v1", tags=["handoffs"])


class AcknowledgementOut(Response):
    handoff_id: str
    person_id: str
    acknowledged_at: datetime


@router.post(
    "/handoffs/{handoff_id}/acknowledgement",
    status_code=202,
    responses={code: {"model": ErrorOut} for code in (401, 403, 404, 429)},
)
async def acknowledge(
    gateway: GatewayDep, principal: PrincipalDep, handoff_id: Id
) -> AcknowledgementOut:
    """Acknowledge a handoff: the SLA monitor pauses its escalation (a rep: their own only)."""
    require(principal, Operation.ACKNOWLEDGE_HANDOFF)
    now = gateway.clock()
    async with gateway.write() as uow:
        row = await visible_handoff(uow.session, principal, handoff_id)
        if not may_acknowledge_handoff(principal, assignee_id=row["assignee_id"] or ""):
            raise NotPermitted("only the assignee or a sales lead may acknowledge this handoff")
        event = HandoffAcknowledged(
            handoff_id=handoff_id, person_id=principal.person_id, via="api", acknowledged_at=now
        )
        # One acknowledgement per person and handoff: a retry is the same event.
        publish(
            uow,
            topics.HANDOFF_ACTIONS,
            event,
            type=EventType.HANDOFF_ACKNOWLEDGED,
            subject=row["account_key"],
            name=f"tandem:ack:{handoff_id}:{principal.person_id}",
            time=now,
        )
    return AcknowledgementOut(
        handoff_id=handoff_id, person_id=principal.person_id, acknowledged_at=now
    )
