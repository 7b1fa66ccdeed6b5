"""`make demo`: post a signed meeting request from Jane Doe at acme.com to the running stack.

Run `make up` in another terminal first. The request goes to the `demo` source of
config/example/sources.yaml (the generic format, signed per Standard Webhooks with its dev secret).
Then it follows the event to the gateway and prints the routing decision and the alert.
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from tandem_api_gateway.settings import DEMO_KEYS
from tandem_ingest.domain.signatures import sign_standard_webhook
from tandem_ingest.domain.sources import parse_sources
from tandem_router.config import load_rules

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "config" / "example" / "sources.yaml"
RULES = ROOT / "config" / "example" / "routing.yaml"
# `make up` puts the gateway on TANDEM_LOCAL_HTTP_BASE (8000) and ingest on the port after it.
BASE = int(os.environ.get("TANDEM_LOCAL_HTTP_BASE", "8000"))
INGEST_URL = f"http://127.0.0.1:{BASE + 1}/v1/webhooks/demo"
GATEWAY = f"http://127.0.0.1:{BASE}"
ACCOUNT = "acme.com"
API_KEY = DEMO_KEYS[0].key  # the dev revops-admin key (dev only)


def demo_secret(path: Path = SOURCES) -> str:
    """Return a secret ingest accepts for the demo source (its env secret, else its dev secret)."""
    sources = parse_sources(yaml.safe_load(path.read_text()), environ=os.environ, production=False)
    return sources["demo"].secrets[0]


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
        "webhook-signature": sign_standard_webhook(
            body=body, msg_id=msg_id, timestamp=timestamp, secret=demo_secret()
        ),
    }
    print(f"POST {INGEST_URL}\n{json.dumps(record, indent=2)}\n")
    try:
        # The gateway's times are whole seconds: anything from this second on is this demo's.
        posted_at = datetime.now(UTC).replace(microsecond=0)
        response = httpx.post(INGEST_URL, content=body, headers=headers, timeout=10)
    except httpx.TransportError as exc:
        print(f"ingest is not reachable ({exc}): start the stack with `make up` first.")
        return 1
    print(f"-> {response.status_code} {response.text}\n")
    if response.status_code >= 300:
        return 1
    print("Jane Doe (acme.com, a Tier 1 account in config/example) asked for a meeting.\n")
    return 0 if follow(since=posted_at) else 1


def follow(*, since: datetime, timeout: float = 10.0) -> bool:
    """Poll the gateway until the handoff and its delivered alert show up, and print both."""
    headers = {"X-API-Key": API_KEY}
    started = time.monotonic()
    deadline, patience = started + timeout, started + timeout / 2
    with httpx.Client(base_url=GATEWAY, headers=headers, timeout=5) as client:
        while time.monotonic() < deadline:
            handoff = _newest(client.get("/v1/handoffs"), since, "decided_at")
            alert = _newest(client.get("/v1/alerts", params={"kind": "handoff"}), since)
            sent = (alert or {}).get("deliveries", [])
            delivered = [d for d in sent if d["status"] == "delivered"]
            # The SLA clock is projected a moment after the handoff: wait a little for it.
            settled = handoff is not None and (handoff.get("sla") or time.monotonic() > patience)
            if handoff and alert and delivered and settled:
                _show(handoff, alert, delivered)
                return True
            time.sleep(0.5)
        # One alert per signal per account per cool-down: a second demo within the hour is
        # recorded on the timeline but hands nothing off again.
        cooldown = load_rules(RULES).signals.meeting_request.cooldown
        earlier = _newest(client.get("/v1/handoffs"), since - cooldown, "decided_at")
    if earlier:
        print(
            f"No new handoff: acme.com had a meeting request handed to {earlier['assignee_id']} "
            f"at {earlier['decided_at']}, and the meeting-request signal is in its cool-down "
            f"({cooldown}, config/example/routing.yaml). The engagement is on the timeline:\n"
            f"  curl -s -H 'X-API-Key: {API_KEY}' {GATEWAY}/v1/accounts/{ACCOUNT}/timeline"
        )
        return True
    print(f"no delivered alert on the gateway after {timeout:.0f} s: see the `make up` log.")
    return False


def _newest(
    response: httpx.Response, since: datetime, stamp: str = "requested_at"
) -> dict[str, Any] | None:
    """Return the newest item of a page that is about the demo account and not older than since."""
    response.raise_for_status()
    for item in response.json()["items"]:
        if item["account_key"] == ACCOUNT and datetime.fromisoformat(item[stamp]) >= since:
            return dict(item)
    return None


def _show(handoff: dict[str, Any], alert: dict[str, Any], delivered: list[dict[str, Any]]) -> None:
    sla = handoff.get("sla") or {}
    print(f"router    routed it to {handoff['assignee_id']} ({handoff['assignee_role']}), because:")
    for line in handoff["explanation"]:
        print(f"            - {line}")
    print(f"          marketing told: {', '.join(handoff['notified_ids']) or 'nobody'}")
    if sla.get("deadline"):
        print(f"sla       follow up by {sla['deadline']} (in the assignee's business hours)")
    print(f"alerts    {alert['title']}")
    for d in delivered:
        # Quiet hours or an absence send an urgent alert to the recipient's cover instead.
        cover = d["recipient_id"] not in alert["recipient_ids"]
        instead = f", covering for {', '.join(alert['recipient_ids'])}" if cover else ""
        print(f"            -> {d['recipient_id']} over {d['channel']} ({d['status']}{instead})")
    print(f"\nThe same on the gateway:\n  curl -s -H 'X-API-Key: {API_KEY}' {GATEWAY}/v1/alerts")
    print(f"  dashboard: {GATEWAY}/")


if __name__ == "__main__":
    sys.exit(main())
