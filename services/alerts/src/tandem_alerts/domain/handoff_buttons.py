"""The actions a Slack message offers on its handoff, and how the message reads after one.

A message offers only what its recipient may do (the shared policy, first-check flavour: alerts
does not know the account's owners, so a manager it cannot place still gets manager actions and
the router answers for good). The actions block's id carries the handoff and the alert, so a
click says which message it came from and the update can re-render that alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tandem_alerts.domain.slack_text import (
    MAX_BUTTON_TEXT,
    context,
    escape_mrkdwn,
    plain,
    slack_date,
)
from tandem_shared.directory import Directory
from tandem_shared.events import (
    AlertKind,
    AlertRequested,
    HandoffAction,
    HandoffActionOutcome,
    HandOnTo,
    RejectReason,
)
from tandem_shared.handoff_policy import HandoffFacts, available_actions, teammates

A = HandoffAction
BLOCK_PREFIX = "handoff"
ACTION_PREFIX = "handoff:"
REJECT_CALLBACK = "handoff_reject"
MAX_OPTIONS = 100  # Slack's limit for a static select

# Each control's action id says what it asks; selects carry the person in the chosen option.
BUTTONS: dict[str, tuple[HandoffAction, HandOnTo | None, str, str | None]] = {
    "handoff:acknowledge": (A.ACKNOWLEDGE, None, "Acknowledge", None),
    "handoff:accept": (A.ACCEPT, None, "Accept", "primary"),
    "handoff:reject": (A.REJECT, None, "Reject…", "danger"),
    "handoff:hand_on_cover": (A.HAND_ON, HandOnTo.COVER, "Hand on to my cover", None),
    "handoff:hand_on_pool": (A.HAND_ON, HandOnTo.POOL, "Back to the pool", None),
}
SELECTS: dict[str, tuple[HandoffAction, HandOnTo | None, str]] = {
    "handoff:hand_on_person": (A.HAND_ON, HandOnTo.PERSON, "Hand on to…"),
    "handoff:assign": (A.ASSIGN, None, "Assign to…"),
    "handoff:reassign": (A.REASSIGN, None, "Reassign to…"),
}
LEGACY_ACK = "ack_handoff"  # the Acknowledge button of messages sent before actions existed

REASON_LABELS = {
    RejectReason.WRONG_PERSON: "Wrong person",
    RejectReason.NOT_A_FIT: "Not a fit",
    RejectReason.DUPLICATE: "Duplicate",
    RejectReason.ALREADY_WORKING: "Already working it",
    RejectReason.OTHER: "Other",
}

# Alerts whose recipients may act on the handoff they are about; FYIs only inform.
ACTIONABLE = frozenset(
    {
        AlertKind.HANDOFF,
        AlertKind.ROUTING_CONFLICT,
        AlertKind.SLA_WARNING,
        AlertKind.SLA_BREACH,
        AlertKind.SLA_ESCALATION,
    }
)


@dataclass(frozen=True)
class Control:
    """What one clicked control asks for."""

    action: HandoffAction
    hand_on_to: HandOnTo | None = None
    target_id: str | None = None


def block_id(handoff_id: str, alert_id: str) -> str:
    """Return the actions block's id: which handoff and which alert its controls act on."""
    return f"{BLOCK_PREFIX}|{handoff_id}|{alert_id}"


def parse_block_id(value: str) -> tuple[str, str] | None:
    """Return (handoff id, alert id) of an actions block id, or None for another block."""
    parts = value.split("|")
    if len(parts) != 3 or parts[0] != BLOCK_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def control_of(action_id: str, selected: str | None) -> Control | None:
    """Return what a control asks, or None when it is not one of ours."""
    if action_id == LEGACY_ACK:
        return Control(A.ACKNOWLEDGE)
    if action_id in BUTTONS:
        action, to, _, _ = BUTTONS[action_id]
        return Control(action, to)
    if action_id in SELECTS and selected:
        action, to, _ = SELECTS[action_id]
        return Control(action, to, selected)
    return None


def facts_of_alert(alert: AlertRequested, state: HandoffFacts | None = None) -> HandoffFacts:
    """Return what alerts knows of the alert's handoff: the latest outcome seen, else the alert."""
    if state is not None:
        return state
    assignee = None if alert.kind is AlertKind.ROUTING_CONFLICT else alert.assignee_id
    return HandoffFacts(handoff_id=alert.handoff_id or "", assignee_id=assignee)


def offered(
    alert: AlertRequested, recipient_id: str, facts: HandoffFacts, directory: Directory
) -> tuple[tuple[HandoffAction, HandOnTo | None], ...]:
    """Return the actions the recipient of this message may take on its handoff now."""
    if alert.kind not in ACTIONABLE or not alert.handoff_id:
        return ()
    return available_actions(recipient_id, facts, directory, first_check=True)


def action_elements(
    alert: AlertRequested, recipient_id: str, facts: HandoffFacts, directory: Directory
) -> list[dict[str, Any]]:
    """Return the buttons and selects of the recipient's message (none: they may do nothing)."""
    elements: list[dict[str, Any]] = []
    for action, to in offered(alert, recipient_id, facts, directory):
        button = next((k for k, (a, t, _, _) in BUTTONS.items() if a is action and t is to), None)
        if button is not None:
            _, _, label, style = BUTTONS[button]
            element: dict[str, Any] = {
                "type": "button",
                "action_id": button,
                "text": plain(label, MAX_BUTTON_TEXT),
                "value": alert.handoff_id,
            }
            if style:
                element["style"] = style
            elements.append(element)
            continue
        select = next(k for k, (a, t, _) in SELECTS.items() if a is action and t is to)
        options = _teammates(recipient_id, facts, directory)
        if options:
            elements.append(
                {
                    "type": "static_select",
                    "action_id": select,
                    "placeholder": plain(SELECTS[select][2], MAX_BUTTON_TEXT),
                    "options": options,
                }
            )
    return elements


def status_line(outcome: HandoffActionOutcome, directory: Directory) -> dict[str, Any]:
    """Return the context block that says who did what, and when."""
    actor = directory.get(outcome.actor_id)
    who = escape_mrkdwn(actor.name if actor else outcome.actor_id)
    what = escape_mrkdwn(outcome.message.rstrip("."))
    owner = directory.get(outcome.assignee_id) if outcome.assignee_id else None
    tail = ""
    if outcome.assignee_id != outcome.previous_assignee_id:
        tail = f" · now with {escape_mrkdwn(owner.name if owner else 'nobody yet')}"
    icon = ":white_check_mark:" if outcome.action in (A.ACCEPT, A.ACKNOWLEDGE) else ":arrow_right:"
    return context(
        f"{icon} *{who}*: {what} · via {outcome.via} · {slack_date(outcome.occurred_at)}{tail}"
    )


def reject_modal(handoff_id: str, private_metadata: str) -> dict[str, Any]:
    """Return the modal that asks why a handoff is rejected (views.open)."""
    options = [
        {"text": plain(label, 75), "value": reason.value} for reason, label in REASON_LABELS.items()
    ]
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": private_metadata,
        "title": plain("Reject handoff", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Why is it not yours?", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": "reason",
                    "options": options,
                },
            },
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "label": plain("Anything the next owner should know", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "note",
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


def _teammates(person_id: str, facts: HandoffFacts, directory: Directory) -> list[dict[str, Any]]:
    options = []
    for candidate in teammates(person_id, facts, directory)[:MAX_OPTIONS]:
        person = directory.get(candidate)
        label = person.name if person is not None else candidate
        options.append({"text": plain(label, 75), "value": candidate})
    return options
