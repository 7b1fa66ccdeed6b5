"""Slack text primitives: Block Kit limits, mrkdwn escaping, truncation and date tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

# Documented Block Kit limits (docs.slack.dev; tests/fixtures/vendor/slack/block_kit_limits.json).
MAX_BLOCKS: Final = 50
MAX_SECTION_TEXT: Final = 3000
MAX_FIELDS: Final = 10
MAX_FIELD_TEXT: Final = 2000
MAX_HEADER_TEXT: Final = 150
MAX_CONTEXT_ELEMENTS: Final = 10
MAX_ACTION_ELEMENTS: Final = 25
MAX_BUTTON_TEXT: Final = 75
MAX_BUTTON_VALUE: Final = 2000
MAX_URL: Final = 3000
MAX_FALLBACK_TEXT: Final = 4000
# Not documented: Slack answers msg_blocks_too_long at roughly 13,200 characters across all blocks
# (slackapi/bolt-js#2509), so the whole message keeps under a safe total.
MAX_TOTAL_BLOCK_TEXT: Final = 12000

ELLIPSIS: Final = "…"
TRUNCATION_NOTE: Final = "… (truncated)"

# What a cut can leave dangling: half an escape ("&am") or half a token ("<!date^17...").
_DANGLING = re.compile(r"&[a-z]{0,3}$|<[^>]*$")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, *, note: str = TRUNCATION_NOTE) -> str:
    """Cut `text` to at most `limit` characters, ending with `note` when anything was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(note):
        return note[:limit]
    head = text[: limit - len(note)]
    head = _DANGLING.sub("", head)
    return head.rstrip() + note


def slack_date(moment: datetime, *, tokens: str = "{date_short_pretty} at {time}") -> str:
    """Return a `<!date^...>` token that Slack shows in each reader's own time zone."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{tokens}|{fallback}>"


def plain(text: str, limit: int) -> dict[str, Any]:
    """Return a plain_text object cut to `limit`."""
    return {"type": "plain_text", "text": truncate(text, limit, note=ELLIPSIS), "emoji": True}


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    """Return a mrkdwn text object cut to `limit` (the text must already be escaped)."""
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def section(text: str) -> dict[str, Any]:
    """Return a section block of (escaped) mrkdwn text."""
    return {"type": "section", "text": mrkdwn(text or " ")}


def header(text: str) -> dict[str, Any]:
    """Return a header block of at most 150 characters."""
    return {"type": "header", "text": plain(text or "Tandem alert", MAX_HEADER_TEXT)}


def context(*texts: str) -> dict[str, Any]:
    """Return a context block of (escaped) mrkdwn texts, at most ten elements."""
    elements = [mrkdwn(t) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements or [mrkdwn(" ")]}


def block_text_length(block: dict[str, Any]) -> int:
    """Return how many characters of text a block carries (what msg_blocks_too_long counts)."""
    total = 0
    for obj in _text_objects(block):
        total += len(obj["text"])
    return total


def fit_total_text(blocks: list[dict[str, Any]], budget: int = MAX_TOTAL_BLOCK_TEXT) -> None:
    """Shorten the longest section texts, in place, until all blocks fit in `budget`."""
    excess = sum(block_text_length(b) for b in blocks) - budget
    while excess > 0:
        sections = [b for b in blocks if b["type"] == "section" and "text" in b]
        longest = max(sections, key=lambda b: len(b["text"]["text"]), default=None)
        if longest is None or len(longest["text"]["text"]) <= 2 * len(TRUNCATION_NOTE):
            return
        current = longest["text"]["text"]
        target = max(2 * len(TRUNCATION_NOTE), len(current) - excess)
        longest["text"]["text"] = truncate(current, target)
        excess -= len(current) - len(longest["text"]["text"])


def _text_objects(block: dict[str, Any]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    if isinstance(block.get("text"), dict):
        objects.append(block["text"])
    objects.extend(block.get("fields", []))
    objects.extend(
        e for e in block.get("elements", []) if "text" in e and isinstance(e["text"], str)
    )
    return objects
