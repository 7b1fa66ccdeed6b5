"""Block Kit rendering of one alert: content, escaping and limits under oversized input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from tandem_alerts.domain.compose import slack_message
from tandem_alerts.domain.slack_blocks import (
    cap_blocks,
    render_alert,
)
from tandem_alerts.domain.slack_text import (
    MAX_TOTAL_BLOCK_TEXT,
    TRUNCATION_NOTE,
    block_text_length,
    section,
)
from tandem_shared.events import AlertKind, HandoffContext


def all_text(blocks: list[dict[str, Any]]) -> str:
    texts: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(texts)


def assert_within_slack_limits(message) -> None:
    blocks = message.blocks
    for block in blocks:
        # slack_sdk's own models check the documented per-block limits independently.
        Block.parse(block).validate_json()
    assert len(blocks) <= 50
    assert len(message.text) <= 4000
    assert sum(block_text_length(b) for b in blocks) <= MAX_TOTAL_BLOCK_TEXT
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            if "text" in block:
                assert 1 <= len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25


def test_message_carries_account_tier_signal_owner_reason_and_deadline(make_alert, ava):
    message = render_alert(make_alert(), assignee=ava)
    text = all_text(message.blocks)

    assert message.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Acme Corp requested a meeting", "emoji": True},
    }
    assert "Acme Corp (acme.com)" in text
    assert "Tier 1" in text
    assert "Meeting request" in text
    assert "<@UAVA>" in text
    assert "Account owner of a Tier 1 account in na-east" in text
    assert "<!date^1715709600^" in text


def test_message_carries_every_handoff_context_section(make_alert):
    text = all_text(render_alert(make_alert()).blocks)

    for title in (
        "*Research summary*",
        "*Engagement history*",
        "*Content consumed*",
        "*Intent signals*",
        "*Suggested approach*",
    ):
        assert title in text
    assert "consolidating vendors" in text
    assert "*Sales Alignment* (bombora), score 78, surging" in text
    # Newest engagement first.
    assert text.index("Demo requested") < text.index("Pricing guide downloaded")


def test_actions_offer_the_recipients_controls_and_open_in_crm(make_alert, directory):
    alert = make_alert(assignee_id="ava.ae")
    blocks = slack_message([alert], directory=directory, recipient_id="ava.ae").blocks
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert actions["block_id"] == "handoff|ho-42|al-1"
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == [
        "handoff:acknowledge",
        "handoff:accept",
        "handoff:reject",
        "handoff:hand_on_cover",
        "handoff:hand_on_pool",
        "handoff:hand_on_person",
        "open_crm",
    ]
    assert actions["elements"][-1]["url"] == "https://app.hubspot.com/contacts/1/company/42"


def test_fyis_and_strangers_get_no_handoff_controls(make_alert, directory):
    fyi = make_alert(kind=AlertKind.HANDOFF_FYI, assignee_id="ava.ae", recipient_ids=["ben.ae"])
    for alert, recipient in ((fyi, "ben.ae"), (make_alert(assignee_id="ava.ae"), "chloe.ae")):
        blocks = slack_message([alert], directory=directory, recipient_id=recipient).blocks
        (actions,) = [b for b in blocks if b["type"] == "actions"]
        assert [e["action_id"] for e in actions["elements"]] == ["open_crm"]


def test_no_actions_without_handoff_or_crm_link(make_alert):
    blocks = render_alert(make_alert(handoff_id=None, crm_url=None)).blocks
    assert not [b for b in blocks if b["type"] == "actions"]


def test_cover_is_told_whom_they_cover_for(make_alert, ava):
    message = render_alert(make_alert(), covering_for=ava)
    assert "You are covering for Ava" in all_text(message.blocks)


def test_user_text_is_escaped_for_mrkdwn(make_alert):
    alert = make_alert(account_name="R&D <Labs>", summary="<!channel> hi", reason="a > b")
    message = render_alert(alert)
    text = all_text(message.blocks)

    assert "R&amp;D &lt;Labs&gt;" in text
    assert "&lt;!channel&gt; hi" in text
    assert "<!channel>" not in text + message.text
    assert "a &gt; b" in text


def test_fallback_text_summarises_the_alert(make_alert, ava):
    message = render_alert(make_alert(), assignee=ava)
    assert message.text.startswith(
        "Acme Corp requested a meeting — Acme Corp (acme.com) (Tier 1) — Meeting request"
    )
    assert "assigned to Ava" in message.text
    assert message.as_kwargs() == {"text": message.text, "blocks": message.blocks}


def test_oversized_input_is_truncated_within_limits_never_refused(make_alert):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    context = HandoffContext(
        research_summary="r" * 10_000,
        engagement_history=[
            {"occurred_at": start + timedelta(hours=i), "kind": "page_view", "name": "p" * 500}
            for i in range(100)
        ],
        content_consumed=[f"Whitepaper {i} " + "w" * 400 for i in range(200)],
        intent_signals=[{"provider": "g2", "topic": f"topic {i}"} for i in range(50)],
        suggested_approach="s" * 10_000,
    )
    alert = make_alert(title="T" * 500, summary="x" * 10_000, reason="y" * 5000, context=context)

    message = render_alert(alert)

    assert_within_slack_limits(message)
    text = all_text(message.blocks)
    assert TRUNCATION_NOTE in text
    assert "…and 85 more in the CRM" in text
    assert message.blocks[0]["text"]["text"].endswith("…")
    assert any(b["type"] == "actions" for b in message.blocks)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.tuples(*[st.integers(min_value=0, max_value=6000) for _ in range(4)]),
    items=st.integers(min_value=0, max_value=120),
)
def test_any_size_of_input_fits_slack(make_alert, sizes, items):
    summary, research, approach, title = sizes
    context = HandoffContext(
        research_summary="&" * research,
        engagement_history=[
            {"occurred_at": datetime(2024, 1, 1, tzinfo=UTC), "kind": "x", "name": "<n>" * 50}
        ]
        * items,
        content_consumed=["c" * 300] * items,
        suggested_approach="a" * approach,
    )
    alert = make_alert(title="t" * max(1, title), summary="s" * summary, context=context)
    assert_within_slack_limits(render_alert(alert))


def test_cap_blocks_keeps_the_tail_and_notes_what_was_cut():
    body = [section(f"part {i}") for i in range(80)]
    tail = [{"type": "actions", "elements": []}]

    blocks = cap_blocks(body, tail)

    assert len(blocks) == 50
    assert blocks[-1] is tail[0]
    assert "32 more sections omitted" in blocks[-2]["elements"][0]["text"]
