"""Ingest's webhook connections against a database that drops them."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from test_ingest_harness import IngestHarness, running_ingest, standard_webhook_headers

from tandem_ingest.adapters.webhook_store import APPLICATION

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"ingest-db-test-secret-0001").decode()
SOURCES: dict[str, Any] = {
    "sources": [{"name": "generic", "kind": "generic", "dev_secrets": [SECRET]}]
}


async def _post(ingest: IngestHarness, record_id: str) -> int:
    body = orjson.dumps(
        {
            "kind": "engagement",
            "id": record_id,
            "event": "form_fill",
            "email": "dee@initech.com",
            "occurred_at": "2026-01-05T15:00:00Z",
        }
    )
    headers = standard_webhook_headers(SECRET, body)
    response = await ingest.client.post("/v1/webhooks/generic", content=body, headers=headers)
    return response.status_code


async def _terminate_webhook_connections(ingest: IngestHarness) -> int:
    return int(
        await ingest.scalar(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ).bindparams(name=APPLICATION)
        )
    )


async def test_webhooks_after_the_database_dropped_their_connections_are_recorded(
    infra: Any,
) -> None:
    run = uuid.uuid4().hex
    async with running_ingest(infra, SOURCES) as ingest:
        assert [await _post(ingest, f"{run}-before-{n}") for n in range(3)] == [202] * 3
        assert ingest.context.webhooks.connections >= 1
        assert await _terminate_webhook_connections(ingest) >= 1
        # The pool notices the drop by itself (no request has to fail to find out).
        async with asyncio.timeout(5):
            while ingest.context.webhooks.connections:
                await asyncio.sleep(0.02)

        after = [await _post(ingest, f"{run}-after-{n}") for n in range(5)]
        assert after == [202] * 5, after
        published = await ingest.settled(
            lambda env: str(env.data.get("engagement_id", "")).startswith(f"generic:{run}"),
            count=8,
        )
    assert len(published) == 8
