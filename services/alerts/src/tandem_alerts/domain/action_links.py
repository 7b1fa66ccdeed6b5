"""One-click action links in emails: signed (HMAC-SHA256), expiring, for one person and action.

A link names the handoff, the alert, the person it was sent to and the action; it proves that
with a signature over those claims and an expiry. Following it shows a confirmation page (a link
scanner's GET changes nothing); the page's POST acts, once: the shell records each link id when
it is used. The token is `<claims>.<signature>`, both base64url, so it fits in a URL path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, ValidationError

from tandem_shared.events import HandoffAction, HandOnTo

_LINK_IDS = uuid.UUID("5a0f5a43-2a5e-4d8f-8f0c-3f9b7c7d3e21")

LABELS: dict[tuple[HandoffAction, HandOnTo | None], str] = {
    (HandoffAction.ACKNOWLEDGE, None): "Acknowledge",
    (HandoffAction.ACCEPT, None): "Accept",
    (HandoffAction.REJECT, None): "Reject…",
    (HandoffAction.HAND_ON, HandOnTo.COVER): "Hand on to my cover",
    (HandoffAction.HAND_ON, HandOnTo.POOL): "Back to the pool",
    (HandoffAction.HAND_ON, HandOnTo.PERSON): "Hand on to a teammate…",
    (HandoffAction.ASSIGN, None): "Assign…",
    (HandoffAction.REASSIGN, None): "Reassign…",
}


class LinkError(ValueError):
    """A link that cannot be used: `reason` is invalid or expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LinkClaims(BaseModel):
    """What a link lets its holder ask, and until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    link_id: str
    handoff_id: str
    alert_id: str
    person_id: str
    action: HandoffAction
    hand_on_to: HandOnTo | None = None
    expires: int  # epoch seconds


@dataclass(frozen=True)
class LinkSigner:
    """Signs and reads links with the service's secret."""

    secret: bytes
    base_url: str  # where alerts' /v1/actions/ is reachable from a mail client
    max_age: timedelta

    def claims(
        self,
        *,
        handoff_id: str,
        alert_id: str,
        person_id: str,
        action: HandoffAction,
        hand_on_to: HandOnTo | None,
        now: datetime,
    ) -> LinkClaims:
        """Return the claims of a new link (the same alert, person and action: the same id)."""
        key = f"{alert_id}:{person_id}:{action.value}:{hand_on_to.value if hand_on_to else ''}"
        return LinkClaims(
            link_id=str(uuid.uuid5(_LINK_IDS, key)),
            handoff_id=handoff_id,
            alert_id=alert_id,
            person_id=person_id,
            action=action,
            hand_on_to=hand_on_to,
            expires=int((now + self.max_age).timestamp()),
        )

    def token(self, claims: LinkClaims) -> str:
        """Return the signed token of these claims."""
        body = _b64(claims.model_dump_json(exclude_none=True).encode())
        return f"{body}.{_b64(self._mac(body))}"

    def url(self, claims: LinkClaims) -> str:
        """Return the link to put in an email."""
        return f"{self.base_url.rstrip('/')}/v1/actions/{self.token(claims)}"

    def read(self, token: str, *, now: datetime) -> LinkClaims:
        """Return a token's claims; raise LinkError when it is forged, garbled or expired."""
        body, _, signature = token.partition(".")
        try:
            given = _unb64(signature)
            raw = _unb64(body)
        except ValueError as exc:
            raise LinkError("invalid", "This link is not a Tandem action link.") from exc
        if not hmac.compare_digest(given, self._mac(body)):
            raise LinkError("invalid", "This link is not a Tandem action link.")
        try:
            claims = LinkClaims.model_validate_json(raw)
        except ValidationError as exc:
            raise LinkError("invalid", "This link is not a Tandem action link.") from exc
        if now.timestamp() >= claims.expires:
            raise LinkError("expired", "This link has expired: act in Slack or in Tandem instead.")
        return claims

    def _mac(self, body: str) -> bytes:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc
