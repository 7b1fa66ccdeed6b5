"""Slack request signatures (v0, HMAC-SHA256, five-minute window), checked by slack_sdk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from slack_sdk.signature import Clock, SignatureVerifier


class SlackSignatureError(ValueError):
    """The request did not come from Slack, or came too long ago to trust."""


class _ServiceClock(Clock):
    """slack_sdk's clock, read from the service's clock so tests can move time."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now().timestamp()


class SlackRequestVerifier:
    """Checks that an interaction request was signed by Slack in the last five minutes."""

    def __init__(self, signing_secret: str, *, clock: Callable[[], datetime]) -> None:
        # Without a secret (dev without Slack) nothing verifies; slack_sdk refuses an empty one.
        self._verifier = (
            SignatureVerifier(signing_secret, clock=_ServiceClock(clock))
            if signing_secret.strip()
            else None
        )

    def verify(self, *, body: bytes, timestamp: str | None, signature: str | None) -> None:
        """Raise SlackSignatureError unless the headers prove Slack sent this body recently."""
        if self._verifier is None:
            raise SlackSignatureError("no signing secret configured")
        if not timestamp or not signature:
            raise SlackSignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
        if not timestamp.isdigit():  # slack_sdk would raise on int()
            raise SlackSignatureError("X-Slack-Request-Timestamp is not an integer")
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            raise SlackSignatureError("signature mismatch or timestamp outside five minutes")
