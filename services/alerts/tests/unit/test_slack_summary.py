"""Messages that carry several alerts: a coalesced burst and a digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block

from tandem_alerts.domain.digest import build_digest
from tandem_alerts.domain.slack_blocks import ACK_ACTION_ID
from tandem_alerts.domain.slack_summary import render_digest, render_summary
from tandem_alerts.domain.slack_text import MAX_TOTAL_BLOCK_TEXT, block_text_length

T0 = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def test_summary_has_one_section_per_alert_with_an_ack_button_where_allowed(make_alert):
    alerts = [
        make_alert(alert_id="1", title="Acme asked for a demo", handoff_id="h1"),
        make_alert(alert_id="2", title="Beta & Co surging", account_name="Beta", handoff_id="h2"),
        make_alert(alert_id="3", title="FYI", handoff_id=None),
    ]

    message = render_summary(alerts, acknowledgeable={"h1", "h2"})
    bare = render_summary(alerts, acknowledgeable={"h2"})

    assert message.blocks[0]["text"]["text"] == "3 Tandem alerts"
    sections = [b for b in message.blocks if b["type"] == "section"]
    assert [s["text"]["text"].split("\n")[0] for s in sections] == [
        "*Acme asked for a demo*",
        "*Beta &amp; Co surging*",
        "*FYI*",
    ]
    buttons = [s["accessory"] for s in sections if "accessory" in s]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (ACK_ACTION_ID, "h1"),
        (ACK_ACTION_ID, "h2"),
    ]
    only = [b["accessory"]["value"] for b in bare.blocks if "accessory" in b]
    assert only == ["h2"]
    assert "Acme asked for a demo" in message.text and "Beta &amp; Co surging" in message.text


def test_a_huge_burst_still_fits_one_message(make_alert):
    alerts = [make_alert(alert_id=str(i), summary="s" * 2000) for i in range(120)]

    message = render_summary(alerts)

    assert len(message.blocks) <= 50
    for block in message.blocks:
        Block.parse(block).validate_json()
    assert len(message.text) <= 4000
    assert sum(block_text_length(b) for b in message.blocks) <= MAX_TOTAL_BLOCK_TEXT
    omitted = message.blocks[-2]["elements"][0]["text"]
    assert "more sections omitted" in omitted


def test_summary_needs_alerts():
    with pytest.raises(ValueError, match="at least one alert"):
        render_summary([])


def test_digest_message_lists_accounts_with_links(make_alert):
    digest = build_digest(
        "ava.ae",
        [
            make_alert(alert_id="1", title="Old", requested_at=T0),
            make_alert(
                alert_id="2",
                title="New",
                account_key="beta.io",
                account_name="Beta",
                requested_at=T0 + timedelta(hours=1),
                crm_url="https://crm.example/beta",
            ),
        ],
        generated_at=T0 + timedelta(hours=2),
    )

    message = render_digest(digest)

    assert message.blocks[0]["text"]["text"] == "Your Tandem digest: 2 alerts"
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert sections[0].startswith("*Beta*")
    assert "<https://crm.example/beta|open>" in sections[0]
    assert sections[1].startswith("*Acme Corp*")
    assert "Beta, Acme Corp" in message.text
