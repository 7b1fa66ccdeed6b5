"""Acknowledge clicks in Slack interaction payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from tandem_alerts.domain.slack_interaction import (
    InteractionPayloadError,
    acknowledgement,
    parse_ack_click,
)

NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def interaction(payload: dict[str, object]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


ACK_BODY = interaction(
    {
        "type": "block_actions",
        "user": {"id": "UAVA", "username": "ava"},
        "team": {"id": "T1"},
        "channel": {"id": "D1"},
        "container": {"type": "message", "message_ts": "1715688000.000100"},
        "response_url": "https://hooks.slack.com/actions/T1/1/abc",
        "actions": [{"action_id": "ack_handoff", "value": "ho-42", "type": "button"}],
    }
)


def test_parse_ack_click_reads_handoff_and_user():
    click = parse_ack_click(ACK_BODY)
    assert click is not None
    assert (click.handoff_id, click.slack_user_id) == ("ho-42", "UAVA")
    assert (click.team_id, click.channel_id) == ("T1", "D1")
    assert click.message_ts == "1715688000.000100"
    assert click.response_url == "https://hooks.slack.com/actions/T1/1/abc"


def test_other_interactions_are_not_acks():
    open_crm = interaction(
        {"type": "block_actions", "user": {"id": "U"}, "actions": [{"action_id": "open_crm"}]}
    )
    assert parse_ack_click(open_crm) is None
    assert parse_ack_click(interaction({"type": "view_submission"})) is None


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
    ],
)
def test_malformed_payloads_raise_a_clear_error(body):
    with pytest.raises(InteractionPayloadError):
        parse_ack_click(body)


def test_a_click_by_a_known_person_becomes_a_handoff_acknowledgement(directory):
    click = parse_ack_click(ACK_BODY)
    assert click is not None

    event = acknowledgement(click, directory=directory, now=NOW)

    assert event is not None
    assert (event.handoff_id, event.person_id, event.via) == ("ho-42", "ava.ae", "slack")
    assert event.acknowledged_at == NOW
    stranger = click.model_copy(update={"slack_user_id": "UNOBODY"})
    assert acknowledgement(stranger, directory=directory, now=NOW) is None
