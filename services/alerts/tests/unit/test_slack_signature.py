"""Slack request signatures: v0 HMAC-SHA256 over the raw body, five minutes either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.signature import SignatureVerifier

from tandem_alerts.adapters.slack_signature import SlackRequestVerifier, SlackSignatureError

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
TIMESTAMP = str(int(NOW.timestamp()))
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"


def sign(timestamp: str, body: bytes = BODY, secret: str = SECRET) -> str:
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return signature


def verifier(now: datetime = NOW, secret: str = SECRET) -> SlackRequestVerifier:
    return SlackRequestVerifier(secret, clock=lambda: now)


def test_the_example_request_from_slacks_documentation_verifies():
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect"
        b"&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
        b"%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    sent = datetime.fromtimestamp(1531420618, tz=UTC)

    verifier(now=sent).verify(body=body, timestamp="1531420618", signature=signature)


def test_a_good_signature_verifies():
    verifier().verify(body=BODY, timestamp=TIMESTAMP, signature=sign(TIMESTAMP))


@pytest.mark.parametrize(
    ("body", "secret"), [(BODY, "not-the-secret"), (BODY + b"x", SECRET)], ids=["secret", "body"]
)
def test_a_wrong_secret_or_a_tampered_body_is_rejected(body, secret):
    signature = sign(TIMESTAMP, body=BODY, secret=secret)
    with pytest.raises(SlackSignatureError, match="mismatch"):
        verifier().verify(body=body, timestamp=TIMESTAMP, signature=signature)


@pytest.mark.parametrize("skew", [timedelta(minutes=6), timedelta(minutes=-6)])
def test_a_timestamp_outside_five_minutes_is_rejected(skew):
    timestamp = str(int((NOW - skew).timestamp()))
    with pytest.raises(SlackSignatureError, match="five minutes"):
        verifier().verify(body=BODY, timestamp=timestamp, signature=sign(timestamp))


def test_a_timestamp_inside_the_window_is_accepted():
    timestamp = str(int((NOW - timedelta(minutes=4)).timestamp()))
    verifier().verify(body=BODY, timestamp=timestamp, signature=sign(timestamp))


@pytest.mark.parametrize(
    ("timestamp", "signature", "message"),
    [
        (None, "v0=abc", "missing"),
        (TIMESTAMP, None, "missing"),
        ("yesterday", "v0=abc", "not an integer"),
        ("-5", "v0=abc", "not an integer"),
    ],
)
def test_missing_or_malformed_headers_are_rejected(timestamp, signature, message):
    with pytest.raises(SlackSignatureError, match=message):
        verifier().verify(body=BODY, timestamp=timestamp, signature=signature)


def test_an_empty_signing_secret_never_verifies():
    with pytest.raises(SlackSignatureError, match="no signing secret"):
        verifier(secret="").verify(body=BODY, timestamp=TIMESTAMP, signature=sign(TIMESTAMP))
