"""`/tandem` slash command: a rep sets their own availability from Slack.

Signed by Slack like interactions. The change is published on `tandem.people` (through the
outbox, keyed by the person), which the router, the SLA monitor and alerts itself apply; the
answer is ephemeral, only for the person who typed it.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from tandem_alerts.adapters.outcomes import SOURCE
from tandem_alerts.adapters.slack_signature import SlackRequestVerifier
from tandem_alerts.domain.availability_command import CommandError, parse_command
from tandem_alerts.sending import Clock, Sessions
from tandem_alerts.slack_http import signed_body
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import AvailabilityChanged, EventType
from tandem_shared.topics import PEOPLE
from tandem_shared.uow import unit_of_work

log = structlog.get_logger(__name__)

_CHANGE_IDS = uuid.UUID("1f6a3c2e-9d7b-4e15-8a0c-2b5d7e9f1c34")


def slash_commands_router(
    *, signing_secret: str, directory: Directory, sessions: Sessions, clock: Clock
) -> APIRouter:
    """Return the router of POST /v1/slack/commands."""
    router = APIRouter(tags=["slack"])
    verifier = SlackRequestVerifier(signing_secret, clock=clock)

    @router.post("/v1/slack/commands")
    async def slack_command(request: Request) -> JSONResponse:
        body = await signed_body(request, verifier)
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items() if v}
        except UnicodeDecodeError as exc:
            raise HTTPException(status_code=400, detail="body is not a url-encoded form") from exc
        user_id, text = form.get("user_id"), form.get("text", "")
        if not user_id:
            raise HTTPException(status_code=400, detail="slash command without a user_id")
        person = directory.by_slack_user(user_id)
        if person is None:
            return _say("Tandem does not know your Slack user.")
        now = clock()
        try:
            change = parse_command(text, person=person, directory=directory, now=now)
        except CommandError as exc:
            return _say(str(exc))
        # Slack's retry of one command carries its trigger id: the same change, the same event.
        trigger = form.get("trigger_id") or f"{now.isoformat()}:{text}"
        event = AvailabilityChanged(
            change_id=str(uuid.uuid5(_CHANGE_IDS, f"{user_id}:{trigger}")),
            person_id=person.id,
            changed_by=person.id,
            via="slack",
            out_of_office=change.out_of_office,
            cover_id=change.cover_id,
            capacity=change.capacity,
            working_hours=change.working_hours,
            changed_at=now,
        )
        async with unit_of_work(sessions) as uow:
            envelope = Envelope.wrap(
                event,
                type=EventType.AVAILABILITY_CHANGED,
                source=SOURCE,
                subject=person.id,
                id=event.change_id,
                time=now,
            )
            uow.emit(PEOPLE, envelope)
        log.info("availability changed in slack", person=person.id)
        return _say(change.summary)

    return router


def _say(text: str) -> JSONResponse:
    """Answer the command only to the person who typed it."""
    return JSONResponse({"response_type": "ephemeral", "text": text})
