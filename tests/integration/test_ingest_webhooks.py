"""Vendor webhooks through ingest's HTTP API, to canonical events on the real topics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
import sqlalchemy as sa
from test_ingest_harness import (
    IngestHarness,
    fixture_bytes,
    hubspot_v3_headers,
    hubspot_v3_signature,
    running_ingest,
    standard_webhook_headers,
    standard_webhook_signature,
)

from tandem_ingest.adapters.tables import raw_payloads
from tandem_shared import topics

pytestmark = pytest.mark.integration

OLD_SECRET = "whsec_" + base64.b64encode(b"ingest-test-old-secret-0001").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"ingest-test-new-secret-0002").decode()
HUBSPOT_SECRET = "hubspot-test-client-secret"
SEGMENT_SECRET = "segment-test-secret"
CDC_SECRET = "whsec_" + base64.b64encode(b"ingest-test-cdc-secret-0003").decode()
TOKEN = "shared-test-token"
SOURCES: dict[str, Any] = {
    "sources": [
        {"name": "generic", "kind": "generic", "dev_secrets": [OLD_SECRET, NEW_SECRET]},
        {"name": "hubspot", "kind": "hubspot", "dev_secrets": [HUBSPOT_SECRET]},
        {
            "name": "hubspot-v3",
            "kind": "hubspot",
            "dev_secrets": [HUBSPOT_SECRET],
            "allow_legacy_signatures": False,
        },
        {
            "name": "salesforce",
            "kind": "salesforce_outbound",
            "dev_secrets": [TOKEN],
            "config": {"allowed_org_ids": ["00D5e000000KQ2e"]},
        },
        {
            "name": "salesforce-other",
            "kind": "salesforce_outbound",
            "unsigned": True,
            "config": {"allowed_org_ids": ["00D000000000001"]},
        },
        {"name": "cdc", "kind": "salesforce_cdc", "dev_secrets": [CDC_SECRET]},
        {"name": "segment", "kind": "segment", "dev_secrets": [SEGMENT_SECRET]},
        {"name": "clearbit", "kind": "clearbit", "dev_secrets": [TOKEN]},
        {"name": "tiny", "kind": "generic", "dev_secrets": [NEW_SECRET], "max_body_bytes": 400},
        {
            "name": "throttled",
            "kind": "generic",
            "dev_secrets": [NEW_SECRET],
            "rate_limit": {"per_second": 0.001, "burst": 2},
        },
    ]
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ingest(infra: Any) -> AsyncIterator[IngestHarness]:
    async with running_ingest(infra, SOURCES) as harness:
        yield harness


def engagement(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "engagement",
        "id": record_id,
        "event": "meeting_request",
        "email": "jane@acme.com",
        "name": "Jane Doe",
        "occurred_at": "2026-01-05T15:00:00Z",
        **fields,
    }


def signed(body: bytes, *, secret: str = NEW_SECRET, age: int = 0) -> dict[str, str]:
    return standard_webhook_headers(secret, body, age=age)


def hubspot_v3(method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    return hubspot_v3_signature(HUBSPOT_SECRET, method, uri, body, timestamp_ms)


async def archived_result(ingest: IngestHarness, payload_id: str) -> Any:
    return await ingest.scalar(
        sa.select(raw_payloads.c.result).where(raw_payloads.c.id == uuid.UUID(payload_id))
    )


def engagement_id(record_id: str) -> Any:
    return lambda env: env.data.get("engagement_id") == f"generic:{record_id}"


async def test_generic_record_becomes_one_engagement_event_keyed_by_account(
    ingest: IngestHarness,
) -> None:
    record_id = f"mr-{uuid.uuid4().hex}"
    body = orjson.dumps(engagement(record_id))
    response = await ingest.client.post("/v1/webhooks/generic", content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert response.json()["published"] == 1
    [(topic, envelope)] = await ingest.settled(engagement_id(record_id))
    assert topic == topics.ENGAGEMENT
    assert envelope.subject == "acme.com"
    assert envelope.data["kind"] == "meeting_request"
    assert envelope.data["contact_email"] == "jane@acme.com"
    async with ingest.sessions() as session:
        archived = (
            await session.execute(
                sa.select(raw_payloads).where(
                    raw_payloads.c.id == uuid.UUID(response.json()["payload_id"])
                )
            )
        ).one()
    assert archived.body == body
    assert archived.signature_scheme == "standard-webhooks"
    assert archived.headers["webhook-id"].startswith("msg_")


async def test_a_redelivery_is_acknowledged_but_not_published_again(ingest: IngestHarness) -> None:
    record_id = f"re-{uuid.uuid4().hex}"
    body = orjson.dumps(engagement(record_id))
    first = await ingest.client.post("/v1/webhooks/generic", content=body, headers=signed(body))
    again = await ingest.client.post("/v1/webhooks/generic", content=body, headers=signed(body))
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicates"] == 1
    assert again.json()["published"] == 0
    assert len(await ingest.settled(engagement_id(record_id))) == 1
    # Both deliveries are archived, each with the counts it was answered with.
    results = [await archived_result(ingest, r.json()["payload_id"]) for r in (first, again)]
    assert [(r["published"], r["duplicates"]) for r in results] == [(1, 0), (0, 1)]


async def test_ten_concurrent_deliveries_yield_one_canonical_event(ingest: IngestHarness) -> None:
    record_id = f"cc-{uuid.uuid4().hex}"
    body = orjson.dumps(engagement(record_id))
    headers = signed(body)
    responses = await asyncio.gather(
        *(
            ingest.client.post("/v1/webhooks/generic", content=body, headers=headers)
            for _ in range(10)
        )
    )
    assert [r.status_code for r in responses] == [202] * 10
    assert sum(r.json()["published"] for r in responses) == 1
    # Exactly one event on the topic, once the outbox drained and the topics were read to the end.
    assert len(await ingest.settled(engagement_id(record_id))) == 1


async def test_a_batch_with_one_bad_element_keeps_the_good_ones(ingest: IngestHarness) -> None:
    good = f"ok-{uuid.uuid4().hex}"
    bad = engagement(f"bad-{uuid.uuid4().hex}", email="not-an-email")
    body = orjson.dumps({"events": [engagement(good), bad]})
    response = await ingest.client.post("/v1/webhooks/generic", content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert response.json()["published"] == 1
    [error] = response.json()["errors"]
    assert error["index"] == 1
    assert error["loc"] == ["events", 1, "email"]
    assert len(await ingest.settled(engagement_id(good))) == 1


async def test_a_rotated_secret_is_accepted_alone_or_beside_the_new_one(
    ingest: IngestHarness,
) -> None:
    record_id = f"rot-{uuid.uuid4().hex}"
    body = orjson.dumps(engagement(record_id))
    with_old = signed(body, secret=OLD_SECRET)
    response = await ingest.client.post("/v1/webhooks/generic", content=body, headers=with_old)
    assert response.status_code == 202, response.text
    # During a rotation senders put both signatures in the header, space-separated.
    both = signed(body, secret=NEW_SECRET)
    old = standard_webhook_signature(
        OLD_SECRET, both["webhook-id"], int(both["webhook-timestamp"]), body
    )
    both["webhook-signature"] = f"v1,bm90LWEtc2lnbmF0dXJl {old}"
    response = await ingest.client.post("/v1/webhooks/generic", content=body, headers=both)
    assert response.status_code == 202, response.text
    assert len(await ingest.settled(engagement_id(record_id))) == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: {**h, "webhook-signature": "v1,AAAA"}, "mismatch"),
        (lambda h: {k: v for k, v in h.items() if k != "webhook-signature"}, "missing"),
        (lambda h: {**h, "webhook-id": "msg_other"}, "mismatch"),
    ],
)
async def test_a_bad_standard_webhook_signature_is_refused(
    ingest: IngestHarness, mutate: Any, reason: str
) -> None:
    body = orjson.dumps(engagement(f"sig-{uuid.uuid4().hex}"))
    response = await ingest.client.post(
        "/v1/webhooks/generic", content=body, headers=mutate(signed(body))
    )
    assert response.status_code == 401
    assert reason in response.json()["detail"]


async def test_a_stale_timestamp_is_refused(ingest: IngestHarness) -> None:
    body = orjson.dumps(engagement(f"old-{uuid.uuid4().hex}"))
    response = await ingest.client.post(
        "/v1/webhooks/generic", content=body, headers=signed(body, age=6 * 60)
    )
    assert response.status_code == 401
    assert "stale" in response.json()["detail"]


async def test_hubspot_docs_batch_with_v3_signature_over_a_decoded_uri(
    ingest: IngestHarness,
) -> None:
    body = fixture_bytes("hubspot/webhook_batch_docs_example.json")
    path = "/v1/webhooks/hubspot?app=crm%3Async&label=a%20b%26c"
    # The signed URI keeps %20 and %26 but decodes %3A.
    headers = hubspot_v3_headers(HUBSPOT_SECRET, f"http://ingest.test{path}", body)
    response = await ingest.client.post(path, content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["events"] == 2

    def hubspot_contact(crm_id: str) -> Any:
        return lambda env: env.source == "/ingest/hubspot" and env.data.get("crm_id") == crm_id

    [(topic, changed)] = await ingest.settled(hubspot_contact("1246965"))
    assert topic == topics.CRM
    assert changed.data["lifecycle_stage"] == "subscriber"
    assert len(await ingest.settled(hubspot_contact("1246978"))) == 1


async def test_hubspot_v3_stale_or_signed_over_the_undecoded_uri_is_refused(
    ingest: IngestHarness,
) -> None:
    body = b"[]"
    path = "/v1/webhooks/hubspot?app=crm%3Async"
    now_ms = int(time.time() * 1000)
    undecoded = base64.b64encode(
        hmac.new(
            HUBSPOT_SECRET.encode(),
            f"POSThttp://ingest.test{path}".encode() + body + str(now_ms).encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    stale_ms = now_ms - 6 * 60 * 1000
    cases = [
        (undecoded, now_ms, "mismatch"),
        (hubspot_v3("POST", f"http://ingest.test{path}", body, stale_ms), stale_ms, "stale"),
    ]
    for signature, timestamp_ms, reason in cases:
        headers = {
            "content-type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": str(timestamp_ms),
        }
        response = await ingest.client.post(path, content=body, headers=headers)
        assert response.status_code == 401
        assert reason in response.json()["detail"]


async def test_hubspot_legacy_v1_and_v2_signatures(ingest: IngestHarness) -> None:
    body = fixture_bytes("hubspot/webhook_v1_docs_example_body.json")
    v1 = hashlib.sha256(HUBSPOT_SECRET.encode() + body).hexdigest()
    uri = "http://ingest.test/v1/webhooks/hubspot"
    v2 = hashlib.sha256(f"{HUBSPOT_SECRET}POST{uri}".encode() + body).hexdigest()
    json = {"content-type": "application/json"}
    for signature, version in ((v1, "v1"), (v2, "v2")):
        headers = {**json, "X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version}
        response = await ingest.client.post("/v1/webhooks/hubspot", content=body, headers=headers)
        assert response.status_code == 202, response.text
    refused = await ingest.client.post(
        "/v1/webhooks/hubspot-v3", content=body, headers={**json, "X-HubSpot-Signature": v1}
    )
    assert refused.status_code == 401


async def test_segment_docs_messages_with_x_signature(ingest: IngestHarness) -> None:
    for sample in ("track_complete_docs_example.json", "identify_complete_docs_example.json"):
        body = fixture_bytes(f"segment/{sample}")
        signature = hmac.new(SEGMENT_SECRET.encode(), body, hashlib.sha1).hexdigest()
        headers = {"content-type": "application/json", "X-Signature": signature}
        response = await ingest.client.post("/v1/webhooks/segment", content=body, headers=headers)
        assert response.status_code == 202, response.text
        message_id = orjson.loads(body)["messageId"]
        [(topic, _)] = await ingest.settled(
            lambda env, m=message_id: (
                env.source == "/ingest/segment" and env.data.get("engagement_id") == m
            )
        )
        assert topic == topics.ENGAGEMENT
    tampered = await ingest.client.post(
        "/v1/webhooks/segment",
        content=body + b" ",
        headers={"content-type": "application/json", "X-Signature": signature},
    )
    assert tampered.status_code == 401


async def test_salesforce_outbound_message_is_acknowledged_in_soap(ingest: IngestHarness) -> None:
    body = fixture_bytes("salesforce/outbound_message_opportunity.xml")
    headers = {"content-type": "text/xml; charset=utf-8"}
    response = await ingest.client.post(
        f"/v1/webhooks/salesforce?token={TOKEN}", content=body, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Ack>true</Ack>" in response.text
    found = await ingest.settled(
        lambda env: env.source == "/ingest/salesforce" and env.type == "tandem.crm.deal.upserted"
    )
    assert found and all(topic == topics.CRM for topic, _ in found)

    no_token = await ingest.client.post("/v1/webhooks/salesforce", content=body, headers=headers)
    assert no_token.status_code == 401
    assert "soapenv:Fault" in no_token.text
    other_org = await ingest.client.post(
        "/v1/webhooks/salesforce-other", content=body, headers=headers
    )
    assert other_org.status_code == 403
    assert "soapenv:Fault" in other_org.text


async def test_salesforce_cdc_and_clearbit_docs_examples(ingest: IngestHarness) -> None:
    cdc = fixture_bytes("salesforce/cdc_account_create_docs_example.json")
    response = await ingest.client.post(
        "/v1/webhooks/cdc", content=cdc, headers=signed(cdc, secret=CDC_SECRET)
    )
    assert response.status_code == 202, response.text
    assert await ingest.settled(
        lambda env: env.source == "/ingest/salesforce" and env.data.get("name") == "Acme"
    )
    clearbit = fixture_bytes("intent/clearbit_audience_webhook_segment_enter.json")
    response = await ingest.client.post(
        f"/v1/webhooks/clearbit?token={TOKEN}",
        content=clearbit,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    [(topic, intent)] = await ingest.settled(
        lambda env: env.source == "/ingest/clearbit" and env.subject == "clearbit.com"
    )
    assert topic == topics.INTENT
    assert intent.data["entered"] is True


async def test_unknown_source_wrong_type_malformed_and_invalid_bodies(
    ingest: IngestHarness,
) -> None:
    body = orjson.dumps(engagement(f"e-{uuid.uuid4().hex}"))
    unknown = await ingest.client.post("/v1/webhooks/nope", content=body, headers=signed(body))
    assert unknown.status_code == 404
    as_text = {**signed(body), "content-type": "text/plain"}
    wrong_type = await ingest.client.post("/v1/webhooks/generic", content=body, headers=as_text)
    assert wrong_type.status_code == 415
    malformed = b'{"kind": "engagement",'
    response = await ingest.client.post(
        "/v1/webhooks/generic", content=malformed, headers=signed(malformed)
    )
    assert response.status_code == 400
    invalid = orjson.dumps(engagement(f"e-{uuid.uuid4().hex}", score=3, occurred_at="yesterday"))
    response = await ingest.client.post(
        "/v1/webhooks/generic", content=invalid, headers=signed(invalid)
    )
    assert response.status_code == 422
    paths = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert paths == {("occurred_at",), ("score",)}


async def test_oversize_bodies_are_refused_by_declared_and_by_counted_length(
    ingest: IngestHarness,
) -> None:
    body = orjson.dumps(engagement(f"big-{uuid.uuid4().hex}", content_title="x" * 500))
    declared = await ingest.client.post("/v1/webhooks/tiny", content=body, headers=signed(body))
    assert declared.status_code == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    streamed = await ingest.client.post(
        "/v1/webhooks/tiny", content=chunked(), headers=signed(body)
    )
    assert streamed.status_code == 413


async def test_a_source_over_its_rate_limit_gets_429_with_retry_after(
    ingest: IngestHarness,
) -> None:
    answers = []
    for _ in range(3):
        body = orjson.dumps(engagement(f"rl-{uuid.uuid4().hex}"))
        answers.append(
            await ingest.client.post("/v1/webhooks/throttled", content=body, headers=signed(body))
        )
    assert [r.status_code for r in answers] == [202, 202, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    other = orjson.dumps(engagement(f"rl-{uuid.uuid4().hex}"))
    unaffected = await ingest.client.post(
        "/v1/webhooks/generic", content=other, headers=signed(other)
    )
    assert unaffected.status_code == 202
