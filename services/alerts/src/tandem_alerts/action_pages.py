"""Email action links land here: GET shows a confirmation page, POST (the page's form) acts once.

A link scanner or a mail client's preview fetches links with GET; GET never acts. The POST
checks the signature and expiry again, records the link as used and publishes the request in
one transaction, so a second POST (a double submit, a replayed form) finds it used and changes
nothing. Errors are pages a person can read: 400 forged or garbled, 410 expired, 409 used,
403 refused by the shared policy, 415 a body that is not a form, 413 too large, 422 a bad value.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tandem_alerts.action_requests import emit_request, known, refusal
from tandem_alerts.adapters import action_store as store
from tandem_alerts.domain.action_links import LABELS, LinkClaims, LinkError, LinkSigner
from tandem_alerts.domain.email_render import template_environment
from tandem_alerts.domain.handoff_buttons import REASON_LABELS
from tandem_alerts.sending import Clock, Sessions
from tandem_shared.directory import Directory
from tandem_shared.events import HandoffAction, HandoffActionRequested, HandOnTo, RejectReason
from tandem_shared.handoff_policy import HandoffFacts, teammates
from tandem_shared.uow import unit_of_work

log = structlog.get_logger(__name__)

MAX_FORM_BYTES = 16_384
_ACTION_IDS = uuid.UUID("a3e2c1f4-7b6d-4f0e-9a1c-5d8e2b4f6a70")


class PageError(Exception):
    """An answer other than the happy path, as a status and a sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def action_pages_router(
    *, links: LinkSigner, directory: Directory, sessions: Sessions, clock: Clock
) -> APIRouter:
    """Return the router of GET and POST /v1/actions/{token}."""
    router = APIRouter(tags=["email actions"])

    @router.get("/v1/actions/{token}", response_class=HTMLResponse)
    async def confirm(token: str) -> HTMLResponse:
        try:
            claims = _claims(links, token, clock)
            async with sessions() as session:
                if await store.link_used(session, claims.link_id):
                    raise PageError(409, "This link was used already: nothing more to do.")
                facts, alert = await known(session, claims.handoff_id, claims.alert_id)
        except PageError as exc:
            return _page(exc.status, "Link not usable", exc.message)
        label = LABELS[(claims.action, claims.hand_on_to)].rstrip("…")
        form: dict[str, Any] = {
            "action": f"/v1/actions/{token}",
            "submit": label,
            "reasons": [],
            "people": [],
        }
        if claims.action is HandoffAction.REJECT:
            form["reasons"] = [(r.value, text) for r, text in REASON_LABELS.items()]
        if _needs_target(claims):
            form["people"] = _people(claims.person_id, facts, directory)
        person = directory.get(claims.person_id)
        who = person.name if person is not None else claims.person_id
        return _page(
            200,
            f"{label} this handoff?",
            f"{who}, confirm below: nothing happens until you do.",
            alert_title=alert.title if alert is not None else None,
            form=form,
        )

    @router.post("/v1/actions/{token}", response_class=HTMLResponse)
    async def act(token: str, request: Request) -> HTMLResponse:
        try:
            fields = await _form(request)
            claims = _claims(links, token, clock)
            await _act(claims, fields, directory=directory, sessions=sessions, clock=clock)
        except PageError as exc:
            return _page(exc.status, "Not done", exc.message)
        label = LABELS[(claims.action, claims.hand_on_to)].rstrip("…")
        return _page(
            200,
            "Done",
            f"{label}: sent to Tandem. The handoff shows the result in Slack and in Tandem.",
        )

    return router


async def _act(
    claims: LinkClaims,
    fields: dict[str, str],
    *,
    directory: Directory,
    sessions: Sessions,
    clock: Clock,
) -> None:
    now = clock()
    request = HandoffActionRequested(
        # One link, one request: its id derives from the link's.
        action_id=str(uuid.uuid5(_ACTION_IDS, claims.link_id)),
        handoff_id=claims.handoff_id,
        action=claims.action,
        actor_id=claims.person_id,
        via="email",
        hand_on_to=claims.hand_on_to,
        target_id=fields.get("target_id") or None,
        reason=_reason(claims, fields),
        note=(fields.get("note") or "").strip() or None,
        requested_at=now,
    )
    if _needs_target(claims) and request.target_id is None:
        raise PageError(422, "Choose who should take the handoff.")
    async with unit_of_work(sessions) as uow:
        first = await store.use_link(
            uow.session,
            link_id=claims.link_id,
            action_id=request.action_id,
            person_id=claims.person_id,
            handoff_id=claims.handoff_id,
            at=now,
        )
        if not first:
            raise PageError(409, "This link was used already: nothing more to do.")
        facts, alert = await known(uow.session, claims.handoff_id, claims.alert_id)
        refused = refusal(request, facts, directory)
        if refused is not None:
            raise PageError(403, refused)  # rolls the use back: a refused link stays unused
        await emit_request(uow, request, alert, now)
    log.info("handoff action requested by email", handoff_id=claims.handoff_id)


def _claims(links: LinkSigner, token: str, clock: Clock) -> LinkClaims:
    try:
        return links.read(token, now=clock())
    except LinkError as exc:
        raise PageError(410 if exc.reason == "expired" else 400, str(exc)) from exc


async def _form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageError(415, "Send the page's form (application/x-www-form-urlencoded).")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "The form is too large.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(422, "The form could not be read.") from exc
    return {name: values[0] for name, values in parsed.items() if values}


def _reason(claims: LinkClaims, fields: dict[str, str]) -> RejectReason | None:
    if claims.action is not HandoffAction.REJECT:
        return None
    try:
        return RejectReason(fields.get("reason", ""))
    except ValueError as exc:
        raise PageError(422, "Choose why the handoff is not yours.") from exc


def _needs_target(claims: LinkClaims) -> bool:
    named = claims.action in (HandoffAction.ASSIGN, HandoffAction.REASSIGN)
    return named or claims.hand_on_to is HandOnTo.PERSON


def _people(
    person_id: str, facts: HandoffFacts | None, directory: Directory
) -> list[tuple[str, str]]:
    facts = facts or HandoffFacts(handoff_id="", assignee_id=None)
    found = []
    for candidate in teammates(person_id, facts, directory):
        person = directory.get(candidate)
        found.append((candidate, person.name if person is not None else candidate))
    return found


def _page(status: int, heading: str, message: str, **model: Any) -> HTMLResponse:
    template = template_environment().get_template("action_page.html")
    html = template.render(
        heading=heading,
        message=message,
        alert_title=model.get("alert_title"),
        form=model.get("form"),
    )
    # Never cached or indexed: a link is one person's.
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    return HTMLResponse(html, status_code=status, headers=headers)
