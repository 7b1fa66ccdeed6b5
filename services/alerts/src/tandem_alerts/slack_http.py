"""What the Slack endpoints share: the signed body, or a 401."""

from __future__ import annotations

import structlog
from fastapi import HTTPException, Request

from tandem_alerts.adapters.slack_signature import SlackRequestVerifier, SlackSignatureError

log = structlog.get_logger(__name__)


async def signed_body(request: Request, verifier: SlackRequestVerifier) -> bytes:
    """Return the request's body once Slack's signature over it checks out; else answer 401."""
    body = await request.body()
    try:
        verifier.verify(
            body=body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
        )
    except SlackSignatureError as exc:
        log.warning("slack request rejected", path=request.url.path, reason=str(exc))
        raise HTTPException(status_code=401, detail="invalid Slack signature") from exc
    return body
