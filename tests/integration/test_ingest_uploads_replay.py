"""Bombora files streamed to /v1/uploads, replay of the archive, and the retention purge."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
import sqlalchemy as sa
import yaml
from test_ingest_harness import (
    IngestHarness,
    fixture_bytes,
    running_ingest,
    standard_webhook_signature,
)

from tandem_ingest.adapters.tables import dedupe_keys, raw_payload_chunks, raw_payloads
from tandem_ingest.commands import ingest_settings, purge_command, replay_command
from tandem_ingest.maintenance import purge, replay
from tandem_ingest.settings import IngestOptions
from tandem_shared import topics

pytestmark = pytest.mark.integration

SECRET = "whsec_" + "c3VyZ2UtdGVzdC1nZW5lcmljLXNlY3JldA=="
TOKEN = "bombora-test-token"
SOURCES: dict[str, Any] = {
    "sources": [
        {"name": "bombora", "kind": "bombora", "dev_secrets": [TOKEN]},
        {"name": "events", "kind": "generic", "dev_secrets": [SECRET]},
    ]
}
HEADER = b"Company Name,Domain,Size,Industry,Category,Topic,Composite Score,Metro Scores,Country\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ingest(infra: Any) -> AsyncIterator[IngestHarness]:
    # Small archive chunks and event batches, so a modest file crosses many of both.
    options = IngestOptions(upload_chunk_bytes=4096, upload_batch_events=50)
    async with running_ingest(infra, SOURCES, options=options) as harness:
        yield harness


def upload_headers() -> dict[str, str]:
    return {"content-type": "text/csv", "authorization": f"Bearer {TOKEN}"}


async def test_the_bombora_sample_file_becomes_intent_events(ingest: IngestHarness) -> None:
    body = fixture_bytes("intent/bombora_mastersurge_sample.csv")
    response = await ingest.client.post(
        "/v1/uploads/bombora?date=2024-03-04", content=body, headers=upload_headers()
    )
    assert response.status_code == 202, response.text
    summary = response.json()
    assert summary["events"] == summary["rows"] - summary["ignored"] - summary["error_count"]
    found = await ingest.settled(
        lambda env: (
            env.source == "/ingest/bombora"
            and env.subject == "101alma.com"
            and env.time.date().isoformat() == "2024-03-04"
        ),
        count=2,
    )
    assert {topic for topic, _ in found} == {topics.INTENT}
    assert {env.data["topic"] for _, env in found} == {
        "recurring journal entries",
        "recruiting software / services",
    }
    # The same file again (a retried upload): accepted, archived, nothing published twice.
    again = await ingest.client.post(
        "/v1/uploads/bombora?date=2024-03-04", content=body, headers=upload_headers()
    )
    assert again.status_code == 202, again.text
    assert (again.json()["published"], again.json()["duplicates"]) == (0, summary["events"])


async def test_a_large_streamed_file_is_archived_in_chunks_and_keeps_good_rows(
    ingest: IngestHarness,
) -> None:
    run = uuid.uuid4().hex[:8]
    rows = 2_000

    async def stream() -> AsyncIterator[bytes]:
        yield HEADER
        for n in range(rows):
            domain = "gmail.com" if n == 7 else f"c{n}-{run}.com"  # row 7: not a company
            yield f"Co {n},{domain},,,cat,topic {n % 5},{50 + n % 50},,US\n".encode()

    response = await ingest.client.post(
        "/v1/uploads/bombora", content=stream(), headers=upload_headers()
    )
    assert response.status_code == 202, response.text
    summary = response.json()
    assert (summary["events"], summary["published"], summary["error_count"]) == (1999, 1999, 1)
    assert summary["errors"][0]["loc"] == [7, "Domain"]
    payload_id = uuid.UUID(summary["payload_id"])
    chunks = await ingest.scalar(
        sa.select(sa.func.count())
        .select_from(raw_payload_chunks)
        .where(raw_payload_chunks.c.payload_id == payload_id)
    )
    assert chunks > 10
    keys = await ingest.scalar(
        sa.select(sa.func.count())
        .select_from(dedupe_keys)
        .where(dedupe_keys.c.payload_id == payload_id)
    )
    assert keys == 1999
    assert await ingest.settled(lambda env: env.subject == f"c1999-{run}.com")


async def test_uploads_need_the_token_and_a_csv_header(ingest: IngestHarness) -> None:
    body = HEADER + b"Co,acme.com,,,cat,topic,70,,US\n"
    anonymous = await ingest.client.post(
        "/v1/uploads/bombora", content=body, headers={"content-type": "text/csv"}
    )
    assert anonymous.status_code == 401
    as_json = await ingest.client.post(
        "/v1/uploads/bombora",
        content=body,
        headers={**upload_headers(), "content-type": "application/json"},
    )
    assert as_json.status_code == 415
    headless = await ingest.client.post(
        "/v1/uploads/bombora", content=b"", headers=upload_headers()
    )
    assert headless.status_code == 422
    webhook_route = await ingest.client.post(
        "/v1/webhooks/bombora", content=body, headers=upload_headers()
    )
    assert webhook_route.status_code == 404


async def test_replay_republishes_archived_events_with_their_original_ids(
    ingest: IngestHarness,
) -> None:
    record_id = f"rp-{uuid.uuid4().hex}"
    body = orjson.dumps(
        {
            "kind": "intent",
            "id": record_id,
            "domain": "replay-corp.com",
            "topic": "abm",
            "score": 71,
            "surge": True,
            "source": "g2",
            "observed_at": "2026-01-05T10:00:00Z",
        }
    )
    msg_id, timestamp = f"msg_{record_id}", int(datetime.now(UTC).timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhook_signature(SECRET, msg_id, timestamp, body),
    }
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await ingest.client.post("/v1/webhooks/events", content=body, headers=headers)
    assert response.status_code == 202, response.text

    def mine(env: Any) -> bool:
        return (
            env.source == "/ingest/generic"
            and env.data.get("topic") == "abm"
            and (env.subject == "replay-corp.com")
        )

    [(_, original)] = await ingest.settled(mine)
    counts = await replay(
        ingest.sessions,
        source=ingest.context.sources["events"],
        start=before,
        end=datetime.now(UTC) + timedelta(seconds=1),
        page_size=10,
    )
    assert (counts.payloads, counts.republished, counts.first_seen) == (1, 1, 0)
    both = await ingest.settled(mine, count=2)
    assert [env.id for _, env in both] == [original.id, original.id]


async def archive_old_payload(ingest: IngestHarness, *, age: timedelta) -> uuid.UUID:
    payload_id = uuid.uuid4()
    async with ingest.sessions() as session, session.begin():
        await session.execute(
            sa.insert(raw_payloads).values(
                id=payload_id,
                source="events",
                kind="generic",
                received_at=datetime.now(UTC) - age,
                headers={},
                body=b"{}",
                body_bytes=2,
                signature_scheme="standard-webhooks",
                status=202,
                result={},
            )
        )
    return payload_id


async def test_purge_deletes_payloads_past_retention_and_keeps_the_rest(
    ingest: IngestHarness,
) -> None:
    old_key = f"old-{uuid.uuid4().hex}"
    long_ago = datetime.now(UTC) - timedelta(days=400)
    old_id = await archive_old_payload(ingest, age=timedelta(days=400))
    async with ingest.sessions() as session, session.begin():
        await session.execute(
            sa.insert(dedupe_keys).values(
                source="/ingest/generic",
                dedupe_key=old_key,
                event_id=str(uuid.uuid4()),
                payload_id=old_id,
                first_seen_at=long_ago,
            )
        )
    kept_before = await ingest.scalar(
        sa.select(sa.func.count()).select_from(raw_payloads).where(raw_payloads.c.id != old_id)
    )
    counts = await purge(
        ingest.sessions, older_than=datetime.now(UTC) - timedelta(days=365), batch_rows=1
    )
    assert counts.payloads >= 1 and counts.dedupe_keys >= 1
    assert not await ingest.scalar(sa.select(raw_payloads.c.id).where(raw_payloads.c.id == old_id))
    assert not await ingest.scalar(
        sa.select(dedupe_keys.c.event_id).where(dedupe_keys.c.dedupe_key == old_key)
    )
    kept_after = await ingest.scalar(
        sa.select(sa.func.count()).select_from(raw_payloads).where(raw_payloads.c.id != old_id)
    )
    assert kept_after >= kept_before


async def test_the_replay_and_purge_commands_on_an_uploaded_file(
    ingest: IngestHarness, infra: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domain = f"cmd-{uuid.uuid4().hex[:8]}.com"
    body = HEADER + f"Co,{domain},,,cat,topic a,80,,US\nCo,{domain},,,cat,topic b,40,,US\n".encode()
    start = datetime.now(UTC)
    response = await ingest.client.post(
        "/v1/uploads/bombora?date=2026-01-05", content=body, headers=upload_headers()
    )
    assert response.status_code == 202, response.text
    originals = await ingest.settled(lambda env: env.subject == domain, count=2)
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(SOURCES))
    settings = ingest_settings(infra.settings(config_dir=tmp_path))

    end = datetime.now(UTC) + timedelta(seconds=1)
    argv = ["--source", "bombora", "--from", start.isoformat(), "--to", end.isoformat()]
    assert await asyncio.to_thread(replay_command, settings, argv) == 0
    assert "1 payloads, 2 events, 2 outboxed (0 never published before)" in capsys.readouterr().out
    replayed = await ingest.settled(lambda env: env.subject == domain, count=4)
    assert sorted(env.id for _, env in replayed) == sorted(2 * [env.id for _, env in originals])

    old = await archive_old_payload(ingest, age=timedelta(days=3))
    two_days = settings.model_copy(update={"ingest": IngestOptions(raw_retention_days=2)})
    assert await asyncio.to_thread(purge_command, two_days, []) == 0
    assert re.search(r"purged [1-9]\d* raw payloads .* older than 2 days", capsys.readouterr().out)
    recent = uuid.UUID(response.json()["payload_id"])
    async with ingest.sessions() as session:
        kept = await session.scalars(
            sa.select(raw_payloads.c.id).where(raw_payloads.c.id.in_([old, recent]))
        )
        assert list(kept) == [recent]
