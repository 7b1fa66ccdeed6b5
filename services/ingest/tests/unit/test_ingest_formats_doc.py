"""The example of docs/ingest-formats.md verifies and normalizes as the document says."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from tandem_ingest.domain.generic import normalize_generic
from tandem_ingest.domain.signatures import verify_standard_webhook
from tandem_shared.events import EngagementKind, EngagementRecorded

DOC = Path(__file__).resolve().parents[4] / "docs" / "ingest-formats.md"


def _documented_request() -> tuple[dict[str, str], bytes, str]:
    text = DOC.read_text()
    block = re.search(r"```http\n(.*?)\n```", text, re.DOTALL)
    secret = re.search(r"secret\s+`(whsec_[A-Za-z0-9+/=]+)`", text)
    assert block is not None and secret is not None
    head, body = block.group(1).split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    return headers, body.encode(), secret.group(1)


def test_the_documented_generic_example_verifies_and_normalizes() -> None:
    headers, body, secret = _documented_request()
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)

    msg_id = verify_standard_webhook(body=body, headers=headers, secrets=[secret], now=sent_at)
    (event,) = normalize_generic(body, received_at=sent_at).events

    assert msg_id == headers["webhook-id"]
    assert isinstance(event.payload, EngagementRecorded)
    assert event.payload.kind is EngagementKind.MEETING_REQUEST
    assert (event.subject, event.dedupe_key) == ("acme.com", "g2:evt-1042")
