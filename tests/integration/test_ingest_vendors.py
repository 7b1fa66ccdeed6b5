"""Vendor edge cases through ingest's HTTP API: mixed HubSpot batches, concurrent redeliveries,
Salesforce redeliveries and Platform Events, Segment batches; asserted on the real topics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from test_ingest_harness import (
    IngestHarness,
    fixture_bytes,
    hubspot_v3_headers,
    running_ingest,
    standard_webhook_headers,
)

from tandem_shared import topics
from tandem_shared.envelope import Envelope

pytestmark = pytest.mark.integration

HUBSPOT_NEW = "hubspot-vendors-new-client-secret"
HUBSPOT_OLD = "hubspot-vendors-old-client-secret"
SEGMENT_SECRET = "segment-vendors-secret"
CDC_SECRET = "whsec_" + base64.b64encode(b"ingest-vendors-cdc-secret").decode()
TOKEN = "vendors-shared-token"
SOURCES: dict[str, Any] = {
    "sources": [
        {"name": "hubspot", "kind": "hubspot", "dev_secrets": [HUBSPOT_NEW, HUBSPOT_OLD]},
        {
            "name": "salesforce",
            "kind": "salesforce_outbound",
            "dev_secrets": [TOKEN],
            "config": {"allowed_org_ids": ["00D5e000000KQ2e"]},
        },
        {
            "name": "cdc",
            "kind": "salesforce_cdc",
            "dev_secrets": [CDC_SECRET],
            "config": {
                "platform_events": {
                    "Deal_Change__e": {
                        "sobject": "Opportunity",
                        "record_id_field": "Opportunity_Id__c",
                        "fields": {"Stage__c": "StageName"},
                    }
                }
            },
        },
        {"name": "segment", "kind": "segment", "dev_secrets": [SEGMENT_SECRET]},
    ]
}
HUBSPOT_PATH = "/v1/webhooks/hubspot"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ingest(infra: Any) -> AsyncIterator[IngestHarness]:
    async with running_ingest(infra, SOURCES) as harness:
        yield harness


def hubspot_headers(body: bytes, *, secret: str = HUBSPOT_NEW) -> dict[str, str]:
    return hubspot_v3_headers(secret, f"http://ingest.test{HUBSPOT_PATH}", body)


def hubspot_event(kind: str, object_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "objectId": object_id,
        "subscriptionType": kind,
        "eventId": 100,  # HubSpot's eventId is not unique: deduplication must not rely on it
        "subscriptionId": 4242,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": int(time.time() * 1000),
        "attemptNumber": 0,
        "changeSource": "CRM_UI",
        **fields,
    }


def crm_id_is(crm_id: str) -> Any:
    return lambda env: (
        env.source == "/ingest/hubspot"
        and crm_id
        in (
            env.data.get("crm_id"),
            env.data.get("winner_id"),
        )
    )


async def test_a_mixed_hubspot_batch_signed_with_the_previous_secret(
    ingest: IngestHarness,
) -> None:
    ids = random.sample(range(10**9, 10**10), 6)
    company, deal, deleted, merged, bad, association = ids
    domain = f"hs-{uuid.uuid4().hex[:8]}.com"
    batch = [
        hubspot_event(
            "company.propertyChange", company, propertyName="domain", propertyValue=domain
        ),
        hubspot_event("deal.propertyChange", deal, propertyName="amount", propertyValue="1200.5"),
        hubspot_event("contact.deletion", deleted),
        hubspot_event("contact.merge", merged, primaryObjectId=merged, mergedObjectIds=[77, 78]),
        hubspot_event("company.propertyChange", bad, propertyName="abm_tier", propertyValue="gold"),
        hubspot_event("contact.associationChange", association),
    ]
    body = orjson.dumps(batch)
    response = await ingest.client.post(
        HUBSPOT_PATH, content=body, headers=hubspot_headers(body, secret=HUBSPOT_OLD)
    )
    assert response.status_code == 202, response.text
    summary = response.json()
    assert (summary["events"], summary["published"], summary["ignored"]) == (4, 4, 1)
    [error] = summary["errors"]
    assert (error["index"], error["loc"]) == (4, [4, "propertyValue"])

    [(topic, account)] = await ingest.settled(crm_id_is(str(company)))
    assert topic == topics.CRM
    assert (account.type, account.subject) == ("tandem.crm.account.upserted", domain)
    [(_, amount)] = await ingest.settled(crm_id_is(str(deal)))
    assert (amount.type, amount.data["amount"]) == ("tandem.crm.deal.upserted", 1200.5)
    [(_, tombstone)] = await ingest.settled(crm_id_is(str(deleted)))
    assert (tombstone.type, tombstone.data["object_type"]) == (
        "tandem.crm.record.deleted",
        "contact",
    )
    [(_, merge)] = await ingest.settled(crm_id_is(str(merged)))
    assert merge.type == "tandem.crm.records.merged"
    assert merge.data["merged_ids"] == ["77", "78"]
    assert not ingest.events.matching(crm_id_is(str(bad)))


async def test_a_hubspot_batch_delivered_ten_times_at_once_is_published_once(
    ingest: IngestHarness,
) -> None:
    ids = random.sample(range(10**9, 10**10), 3)
    batch = [
        hubspot_event(
            "contact.propertyChange", i, propertyName="lifecyclestage", propertyValue="lead"
        )
        for i in ids
    ]
    body = orjson.dumps(batch)
    headers = hubspot_headers(body)
    responses = await asyncio.gather(
        *(ingest.client.post(HUBSPOT_PATH, content=body, headers=headers) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [202] * 10
    assert sum(r.json()["published"] for r in responses) == 3
    assert sum(r.json()["duplicates"] for r in responses) == 27
    for object_id in ids:
        [(_, envelope)] = await ingest.settled(crm_id_is(str(object_id)))
        assert envelope.data["lifecycle_stage"] == "lead"


def outbound_message(run: str) -> bytes:
    # The docs sample, with notification and record ids of this run only.
    body = fixture_bytes("salesforce/outbound_message_opportunity.xml").decode()
    for n, original in enumerate(("04l5e00000Gx7QzAAJ", "04l5e00000Gx7R0AAJ")):
        body = body.replace(original, f"04l{n}{run}")
    for n, original in enumerate(("0065e00000Bq3XyAAJ", "0065e00000Bq3Y3AAJ")):
        body = body.replace(original, f"006{n}{run}")
    return body.encode()


async def test_a_salesforce_redelivery_is_acknowledged_again_and_not_published(
    ingest: IngestHarness,
) -> None:
    run = uuid.uuid4().hex[:10]
    body = outbound_message(run)
    url = f"/v1/webhooks/salesforce?token={TOKEN}"
    headers = {"content-type": "text/xml; charset=utf-8"}
    first = await ingest.client.post(url, content=body, headers=headers)
    again = await ingest.client.post(url, content=body, headers=headers)
    for response in (first, again):
        assert response.status_code == 200, response.text
        assert "<Ack>true</Ack>" in response.text

    def mine(env: Envelope) -> bool:
        return env.source == "/ingest/salesforce" and run in env.data.get("crm_id", "")

    found = await ingest.settled(mine, count=2)
    assert sorted(env.data["stage"] for _, env in found) == ["Closed Won", "Proposal/Price Quote"]
    assert {env.data["amount"] for _, env in found} == {48000.0, 12500.0}


def standard_headers(body: bytes) -> dict[str, str]:
    return standard_webhook_headers(CDC_SECRET, body)


async def test_a_relayed_platform_event_becomes_the_deal_it_describes(
    ingest: IngestHarness,
) -> None:
    opportunity = f"006{uuid.uuid4().hex[:12]}"
    message = {
        "channel": "/event/Deal_Change__e",
        "data": {
            "schema": "dffQ2QLzDNHqwB8_sHMxdA",
            "payload": {
                "CreatedDate": "2026-01-05T10:00:00Z",
                "Opportunity_Id__c": opportunity,
                "Stage__c": "Negotiation",
            },
            "event": {"replayId": 3, "EventUuid": str(uuid.uuid4())},
        },
    }
    body = orjson.dumps(message)
    response = await ingest.client.post(
        "/v1/webhooks/cdc", content=body, headers=standard_headers(body)
    )
    assert response.status_code == 202, response.text
    [(topic, deal)] = await ingest.settled(lambda env: env.data.get("crm_id") == opportunity)
    assert topic == topics.CRM
    assert (deal.type, deal.data["stage"]) == ("tandem.crm.deal.upserted", "Negotiation")


async def test_a_segment_batch_keeps_the_good_messages_and_keys_them_by_account(
    ingest: IngestHarness,
) -> None:
    track = orjson.loads(fixture_bytes("segment/track_complete_docs_example.json"))
    domain = f"seg-{uuid.uuid4().hex[:8]}.com"
    meeting = {
        **track,
        "messageId": f"ajs-{uuid.uuid4().hex}",
        "event": "Meeting Requested",
        "context": {**track["context"], "traits": {"email": f"dana@{domain}"}},
    }
    broken = {**track, "messageId": "", "event": "Ad Clicked"}
    body = orjson.dumps({"batch": [meeting, broken]})
    signature = hmac.new(SEGMENT_SECRET.encode(), body, hashlib.sha1).hexdigest()
    response = await post_json(ingest.client, "/v1/webhooks/segment", body, signature)
    assert response.status_code == 202, response.text
    [error] = response.json()["errors"]
    assert (error["index"], error["loc"]) == (1, ["batch", 1, "messageId"])
    [(topic, engagement)] = await ingest.settled(lambda env: env.subject == domain)
    assert topic == topics.ENGAGEMENT
    assert engagement.data["kind"] == "meeting_request"
    assert engagement.data["contact_email"] == f"dana@{domain}"


async def post_json(
    client: httpx.AsyncClient, path: str, body: bytes, signature: str
) -> httpx.Response:
    headers = {"content-type": "application/json", "X-Signature": signature}
    return await client.post(path, content=body, headers=headers)
