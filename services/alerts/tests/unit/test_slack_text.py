"""Slack text primitives: escaping, truncation, date tokens, the total text budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem_alerts.domain.slack_text import (
    TRUNCATION_NOTE,
    block_text_length,
    escape_mrkdwn,
    fit_total_text,
    section,
    slack_date,
    truncate,
)


def test_escape_mrkdwn_escapes_the_three_control_characters():
    assert escape_mrkdwn("R&D <b> -> *ok*") == "R&amp;D &lt;b&gt; -&gt; *ok*"


def test_truncate_keeps_short_text_and_notes_a_cut():
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 50, 20)
    assert len(cut) == 20
    assert cut.endswith(TRUNCATION_NOTE)


def test_truncate_never_leaves_half_an_escape_or_token():
    text = "a" * 10 + "&amp;" + "b" * 40
    for limit in range(len(TRUNCATION_NOTE) + 1, 30):
        cut = truncate(text, limit)
        head = cut.removesuffix(TRUNCATION_NOTE)
        assert not head.endswith(("&", "&a", "&am", "&amp"))
    assert truncate("see <!date^1700000000^{date}|x> soon" * 3, 30).count("<") == 0


@given(st.text(alphabet="ab&<> ", max_size=400), st.integers(min_value=1, max_value=300))
def test_escaped_text_stays_within_the_limit_and_well_formed(text, limit):
    cut = truncate(escape_mrkdwn(text), limit)
    assert len(cut) <= limit
    assert "<" not in cut and ">" not in cut


def test_slack_date_has_epoch_tokens_and_utc_fallback():
    moment = datetime(2024, 5, 14, 18, 0, tzinfo=UTC)
    assert slack_date(moment) == (
        "<!date^1715709600^{date_short_pretty} at {time}|2024-05-14 18:00 UTC>"
    )


def test_slack_date_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        slack_date(datetime(2024, 5, 14))


def test_fit_total_text_shortens_the_longest_sections_to_the_budget():
    blocks = [section("a" * 2900), section("b" * 2900), section("c" * 100)]
    fit_total_text(blocks, budget=3000)
    assert sum(block_text_length(b) for b in blocks) <= 3000
    assert blocks[2]["text"]["text"] == "c" * 100
