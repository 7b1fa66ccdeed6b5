"""Email action links: signed, expiring, for one person and action; rendered only where allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tandem_alerts.domain.action_links import LinkError, LinkSigner
from tandem_alerts.domain.compose import email_message
from tandem_shared.events import AlertKind, HandoffAction, HandOnTo

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SIGNER = LinkSigner(
    secret=b"s3cret", base_url="https://tandem.example/alerts/", max_age=timedelta(hours=72)
)


def claims(**changes):
    base = {
        "handoff_id": "ho-42",
        "alert_id": "al-1",
        "person_id": "ava.ae",
        "action": HandoffAction.HAND_ON,
        "hand_on_to": HandOnTo.COVER,
        "now": NOW,
    }
    return SIGNER.claims(**{**base, **changes})


def test_a_link_reads_back_until_it_expires():
    token = SIGNER.token(claims())
    read = SIGNER.read(token, now=NOW + timedelta(hours=71))
    assert (read.person_id, read.action, read.hand_on_to) == ("ava.ae", "hand_on", "cover")
    with pytest.raises(LinkError) as expired:
        SIGNER.read(token, now=NOW + timedelta(hours=72))
    assert expired.value.reason == "expired"


def test_the_same_alert_person_and_action_is_the_same_link_id():
    assert claims().link_id == claims(now=NOW + timedelta(minutes=5)).link_id
    assert claims().link_id != claims(person_id="ben.ae").link_id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # signature changed
        lambda t: t.split(".")[0],  # no signature
        lambda t: "not-a-token",
        lambda t: "e30." + t.split(".")[1],  # other claims, old signature
    ],
)
def test_forged_or_garbled_links_are_refused(mangle):
    token = SIGNER.token(claims())
    with pytest.raises(LinkError) as refused:
        SIGNER.read(mangle(token), now=NOW)
    assert refused.value.reason == "invalid"
    other = LinkSigner(secret=b"other", base_url="https://x/", max_age=timedelta(hours=1))
    with pytest.raises(LinkError):
        other.read(token, now=NOW)


def test_the_email_offers_the_recipients_actions_as_links(make_alert, directory):
    alert = make_alert(assignee_id="ava.ae")
    mine = email_message(alert, recipient_id="ava.ae", directory=directory, links=SIGNER, now=NOW)
    assert "Accept: https://tandem.example/alerts/v1/actions/" in mine.text
    assert "Hand on to my cover: https://" in mine.text
    assert mine.html.count("/v1/actions/") == 6
    fyi = make_alert(kind=AlertKind.HANDOFF_FYI, assignee_id="ava.ae", recipient_ids=["ben.ae"])
    theirs = email_message(fyi, recipient_id="ben.ae", directory=directory, links=SIGNER, now=NOW)
    assert "/v1/actions/" not in theirs.text + theirs.html
