"""`make demo`: post a signed meeting request from Jane Doe at acme.com to the running stack.

Run `make up` in another terminal first. The request goes to the `demo` source of
config/example/sources.yaml (the generic format, signed per Standard Webhooks with its dev secret).
Uses the standard library and httpx only.
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "config" / "example" / "sources.yaml"
INGEST_URL = "http://127.0.0.1:8001/v1/webhooks/demo"
GATEWAY_ALERTS = "http://127.0.0.1:8000/v1/alerts"


def demo_secret(path: Path = SOURCES) -> str:
    """Read the demo source's first dev secret from sources.yaml (no YAML library needed)."""
    in_demo = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*-\s*name:\s*demo\s*$", line):
            in_demo = True
        elif re.match(r"^\s*-\s*name:", line):
            in_demo = False
        elif in_demo and (match := re.search(r"dev_secrets:\s*\[\s*\"([^\"]+)\"", line)):
            return match.group(1)
    raise SystemExit(f"no dev secret for the demo source in {path}")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the Standard Webhooks `v1,<base64>` signature."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def main() -> int:
    """Send the meeting request and say where to look next."""
    record = {
        "kind": "engagement",
        "id": f"demo-{uuid.uuid4().hex[:12]}",
        "event": "meeting_request",
        "email": "jane@acme.com",
        "name": "Jane Doe",
        "url": "https://tandem.example/contact-sales",
        "source": "demo",
        "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    body = json.dumps(record).encode()
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(demo_secret(), msg_id, timestamp, body),
    }
    print(f"POST {INGEST_URL}\n{json.dumps(record, indent=2)}\n")
    try:
        response = httpx.post(INGEST_URL, content=body, headers=headers, timeout=10)
    except httpx.TransportError as exc:
        print(f"ingest is not reachable ({exc}): start the stack with `make up` first.")
        return 1
    print(f"-> {response.status_code} {response.text}\n")
    if response.status_code >= 300:
        return 1
    print(
        "Jane Doe (acme.com, a Tier 1 account in config/example) asked for a meeting. Now look at:"
    )
    print(
        "  - the `make up` terminal: the alerts service logs the alert it sent to the account's AE;"
    )
    print(f"  - the gateway's alert list: curl -s {GATEWAY_ALERTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
