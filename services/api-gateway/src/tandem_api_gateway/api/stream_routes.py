"""`GET /v1/stream`: server-sent events of handoffs, breaches and alerts as they commit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from tandem_api_gateway.adapters import read_store
from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import Gateway, GatewayDep
from tandem_api_gateway.api.schemas import ErrorOut
from tandem_api_gateway.domain.authz import (
    Operation,
    Principal,
    may_read_alert,
    may_read_handoff,
)
from tandem_api_gateway.feed import FeedMessage

router = APIRouter(prefix="/v1", tags=["stream"])
PING_SECONDS = 15


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events `handoff`, `breach` and `alert`, data {id, account_key}",
        },
        401: {"model": ErrorOut},
        429: {"model": ErrorOut},
    },
)
async def stream(gateway: GatewayDep, principal: PrincipalDep) -> EventSourceResponse:
    """Stream handoff, breach and alert changes the caller may see, as they happen."""
    require(principal, Operation.READ_HANDOFFS)
    return EventSourceResponse(_events(gateway, principal), ping=PING_SECONDS)


async def _events(gateway: Gateway, principal: Principal) -> AsyncIterator[ServerSentEvent]:
    async with gateway.feed.subscribe() as messages:
        yield ServerSentEvent(event="ready", data=json.dumps({"person_id": principal.person_id}))
        async for message in messages:
            if await visible(gateway, principal, message):
                data = {"id": message["id"], "account_key": message.get("account_key")}
                yield ServerSentEvent(event=message["kind"], data=json.dumps(data))


async def visible(gateway: Gateway, principal: Principal, message: FeedMessage) -> bool:
    """Return True when the caller may see the object a feed message is about."""
    if principal.is_leader:
        return True
    async with gateway.read() as session:
        if message["kind"] == "alert":
            alert: dict[str, Any] | None = await read_store.get_alert(session, message["id"])
            return alert is not None and may_read_alert(
                principal, recipient_ids=alert["recipient_ids"]
            )
        handoff = await read_store.get_handoff(session, message["id"])
    return handoff is not None and may_read_handoff(
        principal, assignee_id=handoff["assignee_id"] or "", notified_ids=handoff["notified_ids"]
    )
