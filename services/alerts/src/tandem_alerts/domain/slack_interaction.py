"""Slack interactivity: read an Acknowledge click (the shell checks Slack's signature first)."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict

from tandem_alerts.domain.slack_blocks import ACK_ACTION_ID
from tandem_shared.directory import Directory
from tandem_shared.events import HandoffAcknowledged


class InteractionPayloadError(ValueError):
    """The interaction body is not the form-encoded JSON payload Slack sends."""


class AckClick(BaseModel):
    """Someone pressed Acknowledge on a handoff alert."""

    model_config = ConfigDict(frozen=True)

    handoff_id: str
    slack_user_id: str
    team_id: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None
    response_url: str | None = None


def parse_ack_click(body: bytes) -> AckClick | None:
    """Return the Acknowledge click in an interaction body, or None for any other interaction."""
    payload = _payload(body)
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list):
        raise InteractionPayloadError("block_actions payload without an actions list")
    action = next(
        (a for a in actions if isinstance(a, dict) and a.get("action_id") == ACK_ACTION_ID), None
    )
    if action is None:
        return None
    handoff_id = action.get("value")
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(handoff_id, str) or not handoff_id:
        raise InteractionPayloadError("ack_handoff action without a handoff id value")
    if not isinstance(user_id, str) or not user_id:
        raise InteractionPayloadError("interaction without a user id")
    return AckClick(
        handoff_id=handoff_id,
        slack_user_id=user_id,
        team_id=_nested_str(payload, "team", "id"),
        channel_id=_nested_str(payload, "channel", "id"),
        message_ts=_nested_str(payload, "container", "message_ts"),
        response_url=_str_or_none(payload.get("response_url")),
    )


def acknowledgement(
    click: AckClick, *, directory: Directory, now: datetime
) -> HandoffAcknowledged | None:
    """Return the HandoffAcknowledged event for a click, or None when the Slack user is unknown."""
    person = directory.by_slack_user(click.slack_user_id)
    if person is None:
        return None
    return HandoffAcknowledged(
        handoff_id=click.handoff_id, person_id=person.id, via="slack", acknowledged_at=now
    )


def _payload(body: bytes) -> dict[str, object]:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InteractionPayloadError("body is not a url-encoded form") from exc
    values = form.get("payload")
    if not values:
        raise InteractionPayloadError("form has no payload field")
    try:
        payload = json.loads(values[0])
    except json.JSONDecodeError as exc:
        raise InteractionPayloadError("payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise InteractionPayloadError("payload is not a JSON object")
    return payload


def _nested_str(payload: dict[str, object], key: str, field: str) -> str | None:
    inner = payload.get(key)
    return _str_or_none(inner.get(field)) if isinstance(inner, dict) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
