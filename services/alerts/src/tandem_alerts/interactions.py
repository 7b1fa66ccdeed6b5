"""Slack interactivity: the Acknowledge button comes back here, signed by Slack."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, HTTPException, Request, Response

from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters.outcomes import SOURCE, event_id
from tandem_alerts.adapters.slack_signature import SlackRequestVerifier, SlackSignatureError
from tandem_alerts.domain.slack_interaction import (
    InteractionPayloadError,
    acknowledgement,
    parse_ack_click,
)
from tandem_alerts.sending import Clock, Sessions
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType, HandoffAcknowledged
from tandem_shared.topics import HANDOFF_ACTIONS
from tandem_shared.uow import unit_of_work

log = structlog.get_logger(__name__)


def interactions_router(
    *, signing_secret: str, directory: Directory, sessions: Sessions, clock: Clock
) -> APIRouter:
    """Return the router of POST /v1/slack/interactions."""
    router = APIRouter(tags=["slack"])
    verifier = SlackRequestVerifier(signing_secret, clock=clock)

    @router.post("/v1/slack/interactions")
    async def slack_interactions(request: Request) -> Response:
        body = await request.body()
        try:
            verifier.verify(
                body=body,
                timestamp=request.headers.get("X-Slack-Request-Timestamp"),
                signature=request.headers.get("X-Slack-Signature"),
            )
        except SlackSignatureError as exc:
            log.warning("slack interaction rejected", reason=str(exc))
            raise HTTPException(status_code=401, detail="invalid Slack signature") from exc
        try:
            click = parse_ack_click(body)
        except InteractionPayloadError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        if click is None:
            return Response(status_code=200)  # another interaction: nothing to do
        event = acknowledgement(click, directory=directory, now=clock())
        if event is None:
            log.warning("acknowledge by an unknown Slack user", slack_user=click.slack_user_id)
            return Response(status_code=200)
        await _publish(sessions, event)
        log.info(
            "handoff acknowledged in slack", handoff_id=event.handoff_id, person=event.person_id
        )
        return Response(status_code=200)

    return router


async def _publish(sessions: Sessions, event: HandoffAcknowledged) -> None:
    async with unit_of_work(sessions) as uow:
        account_key = await repo.account_of_handoff(uow.session, event.handoff_id)
        envelope = Envelope.wrap(
            event,
            type=EventType.HANDOFF_ACKNOWLEDGED,
            source=SOURCE,
            subject=account_key,
            # A double click is the same acknowledgement: consumers' inboxes absorb the second.
            id=event_id("slack-ack", f"{event.handoff_id}:{event.person_id}"),
            time=event.acknowledged_at,
        )
        uow.emit(HANDOFF_ACTIONS, envelope)
