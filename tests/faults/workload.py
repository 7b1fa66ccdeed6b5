"""The load: signed webhooks of three vendor kinds, one account each, posted at a steady rate the
way a vendor does it: an answer other than 2xx (or none) is retried with the same delivery id
until it is acknowledged, so every webhook is eventually accepted exactly as a vendor would see.

- generic meeting request (Standard Webhooks): a meeting_request handoff;
- Salesforce Outbound Message with a Lead: an inbound_lead handoff;
- HubSpot company property change (v3 signature): no handoff, a CRM account update.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import cycle

import httpx
import orjson
from fakes import ACCOUNT_NAME
from fault_config import SALESFORCE_ORG, SECRETS, account_key
from test_ingest_harness import hubspot_v3_headers, standard_webhook_signature

KINDS = ("meeting", "lead", "hubspot")


@dataclass
class Webhook:
    kind: str
    account: int
    body: bytes
    delivery: str  # the vendor's delivery id: a retry reuses it
    attempts: int = 0
    accepted_at: float | None = None  # monotonic time of the first 2xx
    statuses: list[int] = field(default_factory=list)

    @property
    def path(self) -> str:
        return {
            "meeting": "/v1/webhooks/meetings",
            "lead": f"/v1/webhooks/salesforce?token={SECRETS['salesforce']}",
            "hubspot": "/v1/webhooks/hubspot",
        }[self.kind]

    def headers(self, url: str) -> dict[str, str]:
        """Sign now (vendors sign each attempt; signatures carry a timestamp)."""
        if self.kind == "meeting":
            stamp = int(time.time())
            return {
                "content-type": "application/json",
                "webhook-id": self.delivery,
                "webhook-timestamp": str(stamp),
                "webhook-signature": standard_webhook_signature(
                    SECRETS["generic"], self.delivery, stamp, self.body
                ),
            }
        if self.kind == "hubspot":
            return hubspot_v3_headers(SECRETS["hubspot"], url, self.body)
        return {"content-type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def meeting(number: int) -> Webhook:
    record = {
        "kind": "engagement",
        "id": f"mr-{uuid.uuid4().hex}",
        "event": "meeting_request",
        "email": f"jane@{account_key(number)}",
        "name": "Jane Doe",
        "source": "faults",
        # Now: the SLA clock runs from it (a day-long target in the run's config).
        "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return Webhook("meeting", number, orjson.dumps(record), f"msg_{uuid.uuid4().hex}")


def lead(number: int) -> Webhook:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    record_id = f"00Q{uuid.uuid4().hex[:15]}"
    notification = f"04l{uuid.uuid4().hex[:15]}"
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{SALESFORCE_ORG}</OrganizationId>
   <ActionId>04k5e000000CaRkAAK</ActionId>
   <Notification>
    <Id>{notification}</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record_id}</sf:Id>
     <sf:Email>lee@{account_key(number)}</sf:Email>
     <sf:FirstName>Lee</sf:FirstName>
     <sf:LastName>Park</sf:LastName>
     <sf:Company>{ACCOUNT_NAME.format(number)}</sf:Company>
     <sf:Status>Open - Not Contacted</sf:Status>
     <sf:LastModifiedDate>{stamp}</sf:LastModifiedDate>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""
    return Webhook("lead", number, body.encode(), notification)


def hubspot(number: int) -> Webhook:
    event = {
        "objectId": 10**9 + number,
        "subscriptionType": "company.propertyChange",
        "eventId": 100,
        "subscriptionId": 4242,
        "portalId": 62515,
        "occurredAt": int(time.time() * 1000),
        "attemptNumber": 0,
        "propertyName": "domain",
        "propertyValue": account_key(number),
    }
    return Webhook("hubspot", number, orjson.dumps([event]), f"hs-{number}")


BUILDERS: dict[str, Callable[[int], Webhook]] = {
    "meeting": meeting,
    "lead": lead,
    "hubspot": hubspot,
}


def mixed(numbers: list[int], kinds: tuple[str, ...] = KINDS) -> list[Webhook]:
    """One webhook per account, the kinds taking turns."""
    return [BUILDERS[kind](n) for n, kind in zip(numbers, cycle(kinds), strict=False)]


class Driver:
    """Posts webhooks to whichever ingest replica is live, retrying each until a 2xx."""

    def __init__(self, ingest_url: Callable[[], str], *, give_up_after: float = 180) -> None:
        self.ingest_url = ingest_url
        self.give_up_after = give_up_after
        self.client = httpx.AsyncClient(timeout=5)

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, hook: Webhook) -> None:
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            base = self.ingest_url()
            if base:
                hook.attempts += 1
                try:
                    url = base + hook.path
                    response = await self.client.post(
                        url, content=hook.body, headers=hook.headers(url.split("?")[0])
                    )
                    hook.statuses.append(response.status_code)
                    if 200 <= response.status_code < 300:
                        hook.accepted_at = time.monotonic()
                        return
                except httpx.HTTPError:
                    hook.statuses.append(0)
            await asyncio.sleep(0.3)

    async def steady(
        self, make: Callable[[], Webhook], rate: float, until: asyncio.Event, out: list[Webhook]
    ) -> None:
        """Post fresh webhooks at `rate` per second until `until` is set, appending each to
        `out`; then wait for every one to be acknowledged or given up."""
        tasks = []
        started = time.monotonic()
        while not until.is_set():
            await asyncio.sleep(max(0.0, started + len(out) / rate - time.monotonic()))
            out.append(make())
            tasks.append(asyncio.create_task(self.send(out[-1])))
        await asyncio.gather(*tasks)

    async def run(self, hooks: list[Webhook], rate: float) -> None:
        """Post `hooks` at `rate` per second, each in its own task (a slow answer does not
        slow the rate), and wait for every one to be acknowledged or given up."""
        tasks = []
        started = time.monotonic()
        for index, hook in enumerate(hooks):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(self.send(hook)))
        await asyncio.gather(*tasks)
