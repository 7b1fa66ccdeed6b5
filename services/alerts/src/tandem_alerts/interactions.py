"""Slack interactivity: a handoff's controls and the reject modal come back here, signed by Slack.

A click is checked first with the shared policy and what alerts knows (the handoff's state from
the router's outcomes, else the alert); a refusal or a repeat is answered at once, ephemerally,
and publishes nothing. Otherwise the request goes to the router (which decides for good) and the
click is remembered, so the router's answer updates the clicked message in place
(action_outcomes.py). A reject first opens a modal asking why; its submission is the request.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from fastapi import APIRouter, HTTPException, Request, Response

from tandem_alerts.action_requests import emit_request, known, refusal
from tandem_alerts.adapters import action_store as store
from tandem_alerts.adapters.slack_actions import SlackActionsClient, SlackCallError
from tandem_alerts.adapters.slack_signature import SlackRequestVerifier
from tandem_alerts.domain.handoff_buttons import reject_modal
from tandem_alerts.domain.slack_interaction import (
    Click,
    InteractionPayloadError,
    ModalState,
    RejectSubmission,
    parse_interaction,
)
from tandem_alerts.sending import Clock, Sessions
from tandem_alerts.slack_http import signed_body
from tandem_shared.directory import Directory, Person
from tandem_shared.envelope import utcnow
from tandem_shared.events import HandoffAction, HandoffActionRequested
from tandem_shared.uow import UnitOfWork, unit_of_work

log = structlog.get_logger(__name__)

# Slack action ids are derived in this namespace: one click, one request, on every replica.
_NAMESPACE = uuid.UUID("0c5e7a52-43a8-4d7e-9c61-3f0f6f1f6b27")


def interactions_router(
    *,
    signing_secret: str,
    directory: Directory,
    sessions: Sessions,
    clock: Clock,
    slack: SlackActionsClient | None = None,
) -> APIRouter:
    """Return the router of POST /v1/slack/interactions."""
    router = APIRouter(tags=["slack"])
    verifier = SlackRequestVerifier(signing_secret, clock=clock)

    async def reply(channel: str | None, user: str, text: str) -> None:
        """Answer only the person who clicked (chat.postEphemeral)."""
        if slack is None or channel is None:
            log.info("slack reply not sent (no Slack client or channel)", text=text)
            return
        try:
            await slack.call("chat.postEphemeral", {"channel": channel, "user": user, "text": text})
        except SlackCallError as exc:
            log.warning("ephemeral reply failed", error=str(exc))

    @router.post("/v1/slack/interactions")
    async def slack_interactions(request: Request) -> Response:
        body = await signed_body(request, verifier)
        try:
            item = parse_interaction(body)
        except InteractionPayloadError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        if item is None:
            return Response(status_code=200)  # another interaction: nothing to do
        person = directory.by_slack_user(item.slack_user_id)
        if person is None:
            log.warning("handoff action by an unknown Slack user", slack_user=item.slack_user_id)
            await reply(
                item.channel_id, item.slack_user_id, "Tandem does not know your Slack user."
            )
            return Response(status_code=200)
        if isinstance(item, Click) and item.control.action is HandoffAction.REJECT:
            refusal = await _check(sessions, item, person, directory)
            if refusal is None:
                await _open_reject_modal(slack, item)
            else:
                await reply(item.channel_id, item.slack_user_id, refusal)
            return Response(status_code=200)
        async with unit_of_work(sessions) as uow:
            refusal = await _request(uow, item, person, directory, clock)
        if refusal is not None:
            await reply(item.channel_id, item.slack_user_id, refusal)
        return Response(status_code=200)  # an empty 200 also closes the reject modal

    return router


def _ask(
    item: Click | RejectSubmission, person: Person, action_id: str, now: datetime
) -> HandoffActionRequested:
    """Return the request a click or a reject submission makes."""
    if isinstance(item, Click):
        control = item.control
        return HandoffActionRequested(
            action_id=action_id,
            handoff_id=item.handoff_id,
            action=control.action,
            actor_id=person.id,
            via="slack",
            hand_on_to=control.hand_on_to,
            target_id=control.target_id,
            requested_at=now,
        )
    return HandoffActionRequested(
        action_id=action_id,
        handoff_id=item.handoff_id,
        action=HandoffAction.REJECT,
        actor_id=person.id,
        via="slack",
        reason=item.reason,
        note=item.note,
        requested_at=now,
    )


async def _check(
    sessions: Sessions, click: Click, person: Person, directory: Directory
) -> str | None:
    """Return why a click is refused at once, or None to go on."""
    async with sessions() as session:
        facts, _ = await known(session, click.handoff_id, click.alert_id)
    return refusal(_ask(click, person, "", utcnow()), facts, directory)


async def _request(
    uow: UnitOfWork,
    item: Click | RejectSubmission,
    person: Person,
    directory: Directory,
    clock: Clock,
) -> str | None:
    """Check, then publish the request and remember the click; return a refusal instead."""
    now = clock()
    facts, alert = await known(uow.session, item.handoff_id, item.alert_id)
    request = _ask(item, person, "", now)
    refused = refusal(request, facts, directory)
    if refused is not None:
        return refused
    # The same person doing the same thing to the same owner's handoff is one request: a double
    # click (or Slack's retry) finds it recorded and changes nothing.
    owner = facts.assignee_id if facts is not None else ""
    to, target = request.hand_on_to or "", request.target_id or ""
    key = f"{item.handoff_id}:{owner}:{request.action.value}:{to}:{target}:{person.id}"
    request = request.model_copy(update={"action_id": str(uuid.uuid5(_NAMESPACE, key))})
    click = store.ClickRow(
        action_id=request.action_id,
        handoff_id=item.handoff_id,
        alert_id=item.alert_id,
        person_id=person.id,
        slack_user_id=item.slack_user_id,
        channel_id=item.channel_id,
        message_ts=item.message_ts,
    )
    if not await store.record_click(uow.session, click, at=now):
        verb = request.action.value.replace("_", " ")
        return f"You already asked to {verb} this handoff; nothing more to do."
    await emit_request(uow, request, alert, now)
    log.info("handoff action requested in slack", handoff_id=item.handoff_id)
    return None


async def _open_reject_modal(slack: SlackActionsClient | None, click: Click) -> None:
    if slack is None or click.trigger_id is None:
        log.warning("reject modal not opened (no Slack client or trigger id)")
        return
    state = ModalState(
        handoff_id=click.handoff_id,
        alert_id=click.alert_id,
        channel_id=click.channel_id,
        message_ts=click.message_ts,
    )
    view = reject_modal(click.handoff_id, state.model_dump_json())
    try:
        await slack.call("views.open", {"trigger_id": click.trigger_id, "view": view})
    except SlackCallError as exc:
        log.warning("reject modal failed to open", error=str(exc))
