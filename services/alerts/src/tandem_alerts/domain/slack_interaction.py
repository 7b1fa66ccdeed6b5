"""Slack interactivity: read a click on a handoff's controls, or the reject modal's submission.

The shell checks Slack's signature first; this module only reads the (form-encoded JSON) payload.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

from tandem_alerts.domain.handoff_buttons import (
    REJECT_CALLBACK,
    Control,
    control_of,
    parse_block_id,
)
from tandem_shared.events import RejectReason


class InteractionPayloadError(ValueError):
    """The interaction body is not the form-encoded JSON payload Slack sends."""


class Click(BaseModel):
    """Someone used one of a handoff message's controls."""

    model_config = ConfigDict(frozen=True)

    handoff_id: str
    alert_id: str | None  # None for the Acknowledge button of older messages
    control: Control
    slack_user_id: str
    channel_id: str | None = None
    message_ts: str | None = None
    trigger_id: str | None = None  # lets the app open a modal (reject) within 3 s


class RejectSubmission(BaseModel):
    """The reject modal, submitted with a reason."""

    model_config = ConfigDict(frozen=True)

    handoff_id: str
    alert_id: str | None
    slack_user_id: str
    channel_id: str | None
    message_ts: str | None
    reason: RejectReason
    note: str | None


class ModalState(BaseModel):
    """What the reject modal carries between the click and the submission (private_metadata)."""

    handoff_id: str
    alert_id: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None


def parse_interaction(body: bytes) -> Click | RejectSubmission | None:
    """Return the handoff click or reject submission in a body, or None for anything else."""
    payload = _payload(body)
    user_id = _nested_str(payload, "user", "id")
    kind = payload.get("type")
    if kind == "view_submission":
        return _submission(payload, user_id)
    if kind != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list):
        raise InteractionPayloadError("block_actions payload without an actions list")
    for action in actions:
        if not isinstance(action, dict):
            continue
        selected = _nested_str(action, "selected_option", "value")
        control = control_of(str(action.get("action_id", "")), selected)
        if control is None:
            continue
        if not user_id:
            raise InteractionPayloadError("interaction without a user id")
        ids = parse_block_id(str(action.get("block_id", "")))
        handoff_id, alert_id = ids if ids else (action.get("value"), None)
        if not isinstance(handoff_id, str) or not handoff_id:
            raise InteractionPayloadError(f"{action.get('action_id')} action without a handoff id")
        return Click(
            handoff_id=handoff_id,
            alert_id=alert_id,
            control=control,
            slack_user_id=user_id,
            channel_id=_nested_str(payload, "channel", "id")
            or _nested_str(payload, "container", "channel_id"),
            message_ts=_nested_str(payload, "container", "message_ts"),
            trigger_id=_str_or_none(payload.get("trigger_id")),
        )
    return None


def _submission(payload: dict[str, object], user_id: str | None) -> RejectSubmission | None:
    view = payload.get("view")
    if not isinstance(view, dict) or view.get("callback_id") != REJECT_CALLBACK:
        return None
    if not user_id:
        raise InteractionPayloadError("view submission without a user id")
    try:
        state = ModalState.model_validate_json(str(view.get("private_metadata") or ""))
    except ValidationError as exc:
        raise InteractionPayloadError("reject modal without its handoff") from exc
    values = view.get("state", {})
    values = values.get("values", {}) if isinstance(values, dict) else {}
    if not isinstance(values, dict):
        raise InteractionPayloadError("view submission without state values")
    reason = _nested_str(values.get("reason", {}).get("reason", {}), "selected_option", "value")
    note = values.get("note", {}).get("note", {}).get("value")
    try:
        chosen = RejectReason(reason or "")
    except ValueError as exc:
        raise InteractionPayloadError(f"unknown reject reason {reason!r}") from exc
    return RejectSubmission(
        handoff_id=state.handoff_id,
        alert_id=state.alert_id,
        slack_user_id=user_id,
        channel_id=state.channel_id,
        message_ts=state.message_ts,
        reason=chosen,
        note=note.strip() if isinstance(note, str) and note.strip() else None,
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


def _nested_str(payload: object, key: str, field: str) -> str | None:
    inner = payload.get(key) if isinstance(payload, dict) else None
    return _str_or_none(inner.get(field)) if isinstance(inner, dict) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
