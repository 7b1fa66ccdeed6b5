"""Handoff clicks and the reject modal's submission in Slack interaction payloads."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tandem_alerts.domain.handoff_buttons import REJECT_CALLBACK, block_id
from tandem_alerts.domain.slack_interaction import (
    Click,
    InteractionPayloadError,
    ModalState,
    RejectSubmission,
    parse_interaction,
)
from tandem_shared.events import HandoffAction, HandOnTo, RejectReason


def interaction(payload: dict[str, object]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def click_body(action: dict[str, object]) -> bytes:
    return interaction(
        {
            "type": "block_actions",
            "user": {"id": "UAVA", "username": "ava"},
            "channel": {"id": "D1"},
            "container": {"type": "message", "message_ts": "1715688000.000100"},
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "actions": [action],
        }
    )


def test_a_button_says_which_handoff_alert_and_action():
    body = click_body(
        {"action_id": "handoff:accept", "block_id": block_id("ho-42", "al-1"), "value": "ho-42"}
    )
    click = parse_interaction(body)
    assert isinstance(click, Click)
    assert (click.handoff_id, click.alert_id, click.control.action) == (
        "ho-42",
        "al-1",
        HandoffAction.ACCEPT,
    )
    assert (click.channel_id, click.message_ts) == ("D1", "1715688000.000100")
    assert click.trigger_id is not None


def test_a_select_carries_the_person_and_the_legacy_ack_still_works():
    select = click_body(
        {
            "action_id": "handoff:hand_on_person",
            "block_id": block_id("ho-42", "al-1"),
            "selected_option": {"value": "ben.ae"},
        }
    )
    click = parse_interaction(select)
    assert isinstance(click, Click)
    assert click.control.hand_on_to is HandOnTo.PERSON and click.control.target_id == "ben.ae"
    legacy = parse_interaction(click_body({"action_id": "ack_handoff", "value": "ho-42"}))
    assert isinstance(legacy, Click)
    assert (legacy.handoff_id, legacy.alert_id) == ("ho-42", None)
    assert legacy.control.action is HandoffAction.ACKNOWLEDGE


def test_the_reject_modal_submission_reads_reason_and_note():
    state = ModalState(handoff_id="ho-42", alert_id="al-1", channel_id="D1", message_ts="1.2")
    body = interaction(
        {
            "type": "view_submission",
            "user": {"id": "UAVA"},
            "view": {
                "callback_id": REJECT_CALLBACK,
                "private_metadata": state.model_dump_json(),
                "state": {
                    "values": {
                        "reason": {"reason": {"selected_option": {"value": "duplicate"}}},
                        "note": {"note": {"value": "  same as last week's  "}},
                    }
                },
            },
        }
    )
    submission = parse_interaction(body)
    assert isinstance(submission, RejectSubmission)
    assert submission.reason is RejectReason.DUPLICATE
    assert submission.note == "same as last week's"
    assert (submission.channel_id, submission.message_ts) == ("D1", "1.2")


def test_other_interactions_are_not_ours():
    open_crm = interaction(
        {"type": "block_actions", "user": {"id": "U"}, "actions": [{"action_id": "open_crm"}]}
    )
    assert parse_interaction(open_crm) is None
    assert parse_interaction(interaction({"type": "view_submission", "view": {}})) is None
    assert parse_interaction(interaction({"type": "shortcut"})) is None


@pytest.mark.parametrize(
    "body",
    [
        b"not a form",
        urlencode({"other": "1"}).encode(),
        urlencode({"payload": "{not json"}).encode(),
        urlencode({"payload": "[1, 2]"}).encode(),
        interaction({"type": "block_actions"}),
        interaction({"type": "block_actions", "actions": [{"action_id": "ack_handoff"}]}),
        interaction(
            {"type": "block_actions", "actions": [{"action_id": "ack_handoff", "value": "h"}]}
        ),
        interaction(
            {
                "type": "view_submission",
                "user": {"id": "U"},
                "view": {"callback_id": REJECT_CALLBACK, "private_metadata": "{}"},
            }
        ),
    ],
)
def test_malformed_payloads_raise_a_clear_error(body):
    with pytest.raises(InteractionPayloadError):
        parse_interaction(body)
