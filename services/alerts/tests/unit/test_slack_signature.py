"""Slack request signatures and Acknowledge clicks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from tandem_alerts.domain.slack_signature import (
    InteractionPayloadError,
    SlackSignatureError,
    acknowledgement,
    compute_signature,
    parse_ack_click,
    verify_signature,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
TIMESTAMP = str(int(NOW.timestamp()))


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


def test_known_signature_from_slacks_documentation():
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect"
        b"&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
        b"%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        compute_signature(signing_secret=SECRET, timestamp="1531420618", body=body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_a_good_signature_verifies():
    signature = compute_signature(signing_secret=SECRET, timestamp=TIMESTAMP, body=ACK_BODY)
    verify_signature(
        signing_secret=SECRET, timestamp=TIMESTAMP, signature=signature, body=ACK_BODY, now=NOW
    )


def test_a_wrong_secret_is_rejected():
    signature = compute_signature(signing_secret="other", timestamp=TIMESTAMP, body=ACK_BODY)
    with pytest.raises(SlackSignatureError, match="mismatch"):
        verify_signature(
            signing_secret=SECRET, timestamp=TIMESTAMP, signature=signature, body=ACK_BODY, now=NOW
        )


def test_a_tampered_body_is_rejected():
    signature = compute_signature(signing_secret=SECRET, timestamp=TIMESTAMP, body=ACK_BODY)
    with pytest.raises(SlackSignatureError, match="mismatch"):
        verify_signature(
            signing_secret=SECRET,
            timestamp=TIMESTAMP,
            signature=signature,
            body=ACK_BODY + b"x",
            now=NOW,
        )


@pytest.mark.parametrize("skew", [timedelta(minutes=6), timedelta(minutes=-6)])
def test_a_timestamp_outside_five_minutes_is_rejected(skew):
    timestamp = str(int((NOW - skew).timestamp()))
    signature = compute_signature(signing_secret=SECRET, timestamp=timestamp, body=ACK_BODY)
    with pytest.raises(SlackSignatureError, match="window"):
        verify_signature(
            signing_secret=SECRET, timestamp=timestamp, signature=signature, body=ACK_BODY, now=NOW
        )


def test_a_timestamp_inside_the_window_is_accepted():
    timestamp = str(int((NOW - timedelta(minutes=4)).timestamp()))
    signature = compute_signature(signing_secret=SECRET, timestamp=timestamp, body=ACK_BODY)
    verify_signature(
        signing_secret=SECRET, timestamp=timestamp, signature=signature, body=ACK_BODY, now=NOW
    )


@pytest.mark.parametrize(
    ("timestamp", "signature", "message"),
    [
        (None, "v0=abc", "missing"),
        (TIMESTAMP, None, "missing"),
        ("yesterday", "v0=abc", "not an integer"),
    ],
)
def test_missing_or_malformed_headers_are_rejected(timestamp, signature, message):
    with pytest.raises(SlackSignatureError, match=message):
        verify_signature(
            signing_secret=SECRET, timestamp=timestamp, signature=signature, body=b"", now=NOW
        )


def test_an_empty_signing_secret_never_verifies():
    signature = compute_signature(signing_secret="", timestamp=TIMESTAMP, body=ACK_BODY)
    with pytest.raises(SlackSignatureError, match="no signing secret"):
        verify_signature(
            signing_secret="", timestamp=TIMESTAMP, signature=signature, body=ACK_BODY, now=NOW
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
