"""A source's rate limit counts its vendor's deliveries only, not what anyone else sends."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from test_ingest_harness import IngestHarness, running_ingest, standard_webhook_headers

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"ingest-rate-test-secret-01").decode()
FORGED = "whsec_" + base64.b64encode(b"not-the-vendor-secret-0001").decode()
SOURCES: dict[str, Any] = {
    "sources": [
        {
            "name": "intent",
            "kind": "generic",
            "dev_secrets": [SECRET],
            "rate_limit": {"per_second": 0.001, "burst": 2},
        },
        {
            "name": "surge",
            "kind": "bombora",
            "dev_secrets": [SECRET],
            "rate_limit": {"per_second": 0.001, "burst": 1},
        },
    ]
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ingest(infra: Any) -> AsyncIterator[IngestHarness]:
    async with running_ingest(infra, SOURCES) as harness:
        yield harness


async def _post(ingest: IngestHarness, secret: str) -> int:
    body = orjson.dumps(
        {
            "kind": "intent",
            "id": f"rl-{uuid.uuid4().hex}",
            "domain": "acme.com",
            "topic": "ABM software",
            "score": 80,
            "surge": True,
            "source": "6sense",
            "observed_at": "2026-01-05T15:00:00Z",
        }
    )
    headers = standard_webhook_headers(secret, body)
    response = await ingest.client.post("/v1/webhooks/intent", content=body, headers=headers)
    return response.status_code


async def test_forged_deliveries_do_not_drain_the_vendors_allowance(ingest: IngestHarness) -> None:
    forged = [await _post(ingest, FORGED) for _ in range(5)]
    genuine = [await _post(ingest, SECRET) for _ in range(3)]
    assert forged == [401] * 5
    assert genuine == [202, 202, 429]  # the burst of 2 was the vendor's alone


async def test_uploads_with_a_wrong_token_do_not_drain_the_allowance(ingest: IngestHarness) -> None:
    headers = {"content-type": "text/csv"}
    csv = b"Company Name,Domain,Size,Industry,Category,Topic,Composite Score\n"
    for _ in range(3):
        wrong = await ingest.client.post(
            "/v1/uploads/surge", content=csv, headers={**headers, "authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
    bearer = {**headers, "authorization": f"Bearer {SECRET}"}
    first = await ingest.client.post("/v1/uploads/surge", content=csv, headers=bearer)
    second = await ingest.client.post("/v1/uploads/surge", content=csv, headers=bearer)
    assert first.status_code == 202, first.text
    assert second.status_code == 429
