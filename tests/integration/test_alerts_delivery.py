"""The Alerts service against the real broker and database, a fake Slack and a real SMTP server."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
import yaml
from in_process import running
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncEngine
from test_alerts_support import (
    SmtpInbox,
    eventually,
    find_events,
    local_transports,
    smtp_server,
)

from kafka_tools import produce_envelopes
from slack_server import FakeSlack, Received, error, rate_limited, server_error, slow
from tandem_alerts.adapters.senders import judge
from tandem_alerts.adapters.slack import SlackSender
from tandem_alerts.adapters.tables import deliveries, delivery_attempts, destinations, digests
from tandem_alerts.delivery import DeliveryWorker
from tandem_alerts.domain.delivery_policy import Action, FailureKind, RetryPolicy, SlackFailure
from tandem_alerts.domain.slack_blocks import SlackMessage
from tandem_alerts.main import MIGRATIONS, SCHEMA, AlertsService, build_senders, build_service
from tandem_alerts.settings import AlertsOptions, AlertsSettings
from tandem_ingest.domain.hubspot import HubSpotConfig, normalize_hubspot
from tandem_ingest.domain.salesforce import SalesforceConfig, normalize_salesforce_outbound
from tandem_shared.db import create_engine, migrate
from tandem_shared.directory import load_directory
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import AlertKind, AlertRequested, EventType, Tier, Urgency
from tandem_shared.topics import ALERT_DELIVERIES, ALERT_REQUESTS, HANDOFF_ACTIONS

pytestmark = pytest.mark.integration

SIGNING_SECRET = "slack-signing-secret-for-tests"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vendor"


def _person(pid: str, slack: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "name": pid.split(".")[0].title(),
        "email": f"{pid}@tandem.example",
        "role": "ae",
        "team": "sales",
        "slack_user_id": slack,
        "preferences": {"channels": ["slack"], **extra.pop("preferences", {})},
        **extra,
    }


def people_yaml(now: datetime) -> dict[str, Any]:
    """A directory with one person or channel per test, so pacing never couples two tests."""
    quiet = {
        "start": (now - timedelta(hours=2)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    far_digest = (now + timedelta(hours=12)).strftime("%H:%M")
    return {
        "people": [
            _person("content.ae", "U0CONTENT"),
            _person("owner.ae", "U0OWNER"),
            _person("retry.ae", "U0RETRY"),
            _person("rate.ae", "U0RATE"),
            _person("once.ae", "U0ONCE", preferences={"channels": ["slack", "email"]}),
            _person("sentinel.ae", "U0SENTINEL"),
            _person("mail.ae", None, preferences={"channels": ["email"]}),
            _person("bounce.ae", None, preferences={"channels": ["email"]}),
            _person("cover.ae", "U0COVER"),
            _person(
                "quiet.ae",
                "U0QUIET",
                cover_id="cover.ae",
                preferences={"quiet_hours": quiet, "digest_time": far_digest},
            ),
            _person("digest.ae", "U0DIGEST", preferences={"digest": "hourly"}),
            _person("clicker.ae", "U0CLICKER"),
            _person("hubspot.ae", "U0HUBSPOT", preferences={"channels": ["slack", "email"]}),
            _person("salesforce.ae", "U0SFORCE", preferences={"channels": ["slack", "email"]}),
        ],
        "channels": [
            {"id": "burst", "slack_channel": "C0BURST"},
            {"id": "paced", "slack_channel": "C0PACED"},
            {"id": "ranked", "slack_channel": "C0RANKED"},
            {"id": "flaky", "slack_channel": "C0FLAKY"},
            {"id": "gone", "slack_channel": "C0GONE"},
        ],
    }


@dataclass
class Harness:
    service: AlertsService
    slack: FakeSlack
    smtp: SmtpInbox
    engine: AsyncEngine
    bootstrap: str

    async def request(self, *alerts: AlertRequested, envelope_ids: list[str] | None = None) -> None:
        envelopes = [
            Envelope.wrap(
                a,
                type=EventType.ALERT_REQUESTED,
                source="/test",
                subject=a.account_key,
                id=(envelope_ids or [None] * len(alerts))[i],
            )
            for i, a in enumerate(alerts)
        ]
        await produce_envelopes(self.bootstrap, ALERT_REQUESTS, envelopes)

    async def rows(self, alert_id: str) -> list[sa.Row[Any]]:
        async with self.engine.connect() as conn:
            query = sa.select(deliveries).where(deliveries.c.alert_id == alert_id)
            return list(await conn.execute(query))

    async def scalar(self, query: sa.Select[Any]) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def statuses(self, alert_id: str) -> list[str]:
        return sorted(r.status for r in await self.rows(alert_id))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alerts(infra, tmp_path_factory) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    """One Alerts service (two delivery workers) for the module, against fakes of Slack and SMTP."""
    config = tmp_path_factory.mktemp("alerts-config")
    (config / "people.yaml").write_text(yaml.safe_dump(people_yaml(utcnow())))
    slack = FakeSlack()
    await slack.start()
    inbox = SmtpInbox()
    smtp_stack = ExitStack()
    smtp = smtp_stack.enter_context(smtp_server(inbox, auth_require_tls=False))
    base = infra.settings()
    settings = AlertsSettings(
        env="test",
        service="alerts",
        config_dir=config,
        kafka=base.kafka,
        database=base.database,
        **local_transports(slack, smtp.port, SIGNING_SECRET),
        alerts=AlertsOptions(
            crm_base_url="https://crm.example/",
            poll_seconds=0.05,
            digest_poll_seconds=0.2,
            retry_base_seconds=0.05,
            retry_max_seconds=0.5,
            circuit_failure_threshold=3,
            circuit_open_seconds=300,
        ),
    )
    await migrate(settings=settings.database, schema=SCHEMA, script_location=MIGRATIONS)
    service = build_service(settings, group=f"alerts-it-{time.time_ns()}")
    # A second replica: exactly-once must hold with two workers competing for the same rows.
    rival = DeliveryWorker(
        sessions=service.infra.sessions,
        directory=load_directory(config / "people.yaml"),
        senders=build_senders(settings),
        options=settings.alerts,
        clock=utcnow,
    )
    engine = create_engine(settings.database, schema=SCHEMA)
    try:
        async with running(service.infra, workers=[*service.infra.workers, rival]):
            yield Harness(service, slack, inbox, engine, infra.bootstrap_servers)
    finally:
        await engine.dispose()
        smtp_stack.close()
        await slack.stop()


def make_alert(alert_id: str, **fields: Any) -> AlertRequested:
    base: dict[str, Any] = {
        "alert_id": alert_id,
        "kind": AlertKind.HANDOFF,
        "recipient_ids": [],
        "title": f"Alert {alert_id}",
        "account_key": "acme.com",
        "account_name": "Acme Corp",
        "tier": Tier.T2,
        "requested_at": utcnow(),
    }
    return AlertRequested.model_validate(base | fields)


def rich_alert(alert_id: str, recipient: str) -> AlertRequested:
    return make_alert(
        alert_id,
        recipient_ids=[recipient],
        title="Acme requested a meeting",
        tier=Tier.T1,
        signal="meeting_request",
        handoff_id=f"h-{alert_id}",
        assignee_id="owner.ae",
        reason="Owner of the Acme account in NA-East",
        summary="Jane Doe asked for a demo.",
        sla_deadline=utcnow() + timedelta(hours=4),
        crm_url="/contacts/42",
        context={
            "research_summary": "Acme is consolidating its data tooling.",
            "engagement_history": [
                {
                    "kind": "webinar",
                    "name": "ABM 101",
                    "contact": "Jane Doe",
                    "occurred_at": utcnow().isoformat(),
                }
            ],
            "content_consumed": ["Pricing page", "Case study: Globex"],
            "intent_signals": [
                {"topic": "Data integration", "provider": "bombora", "score": 72, "surging": True}
            ],
            "suggested_approach": "Lead with the Globex case study.",
        },
    )


async def test_slack_message_carries_account_tier_reason_and_context(
    alerts: Harness, unique: str
) -> None:
    await alerts.request(rich_alert(f"content-{unique}", "content.ae"))
    [message] = await eventually(lambda: _async(alerts.slack.to("U0CONTENT")))
    text = message.block_text
    for expected in (
        "Acme Corp (acme.com)",
        "Tier 1",
        "Meeting request",
        "<@U0OWNER>",
        "Owner of the Acme account in NA-East",
        "Acme is consolidating its data tooling.",
        "ABM 101",
        "Pricing page",
        "Data integration",
        "Lead with the Globex case study.",
        "https://crm.example/contacts/42",
    ):
        assert expected in text, expected
    # content.ae is not the handoff's assignee (owner.ae is): no handoff controls for them.
    assert "handoff:" not in text and f"h-content-{unique}" not in text
    assert message.text is not None and message.text.startswith("Acme requested a meeting")
    assert len(message.blocks) <= 50
    [row] = await eventually(lambda: _sent(alerts, f"content-{unique}"))
    assert row.slack_ts == message.ts and row.attempts == 1


async def test_email_has_html_and_text_parts_with_the_context(alerts: Harness, unique: str) -> None:
    await alerts.request(rich_alert(f"mail-{unique}", "mail.ae"))
    [mail] = await eventually(lambda: _async(alerts.smtp.to("mail.ae@tandem.example")))
    assert "Acme requested a meeting" in mail["Subject"] and "Acme Corp" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        for expected in (
            "Acme Corp",
            "Tier 1",
            "Owner of the Acme account in NA-East",
            "Acme is consolidating its data tooling.",
            "Pricing page",
        ):
            assert expected in part, expected
    assert "https://crm.example/contacts/42" in html
    await eventually(lambda: _sent(alerts, f"mail-{unique}"))


async def test_5xx_is_retried_until_slack_accepts(alerts: Harness, unique: str) -> None:
    alerts.slack.script("U0RETRY", [server_error(503), server_error(502)])
    alert_id = f"retry-{unique}"
    await alerts.request(make_alert(alert_id, recipient_ids=["retry.ae"]))
    [(event, _)] = await find_events(
        alerts.bootstrap, ALERT_DELIVERIES, lambda e, _: e.data.get("alert_id") == alert_id
    )
    assert event.type == EventType.ALERT_DELIVERED and event.data["attempts"] == 3
    assert [r.status for r in alerts.slack.to("U0RETRY")] == [503, 502, 200]
    outcomes = await _attempts(alerts, alert_id)
    assert outcomes == ["retry", "retry", "sent"]


async def test_a_slack_timeout_is_a_transient_failure(alerts: Harness) -> None:
    alerts.slack.script("C0SLOW", [slow(3)])
    sender = SlackSender(token=alerts.slack.token, base_url=alerts.slack.base_url, timeout=1)
    message = SlackMessage(text="Acme requested a meeting", blocks=[])

    timed_out = await sender.post("C0SLOW", message)
    answered = await sender.post("C0SLOW", message)

    assert isinstance(timed_out.failure, SlackFailure) and timed_out.failure.timeout
    kind, decision = judge(timed_out.failure, attempts=1, policy=RetryPolicy())
    assert (kind, decision.action) == (FailureKind.TRANSIENT, Action.RETRY)
    assert answered.ok and answered.slack_ts is not None


async def test_a_message_slack_took_without_answering_in_time_is_found_not_posted_again(
    alerts: Harness,
) -> None:
    # What a sender that timed out, or died before recording, does next (delivery.py).
    alerts.slack.script("C0LATE", [slow(1.5)])
    sender = SlackSender(token=alerts.slack.token, base_url=alerts.slack.base_url, timeout=1)
    message = SlackMessage(text="Acme requested a meeting", blocks=[])
    since = utcnow() - timedelta(minutes=1)

    timed_out = await sender.post("C0LATE", message, deliveries=[9001, 9002])
    assert isinstance(timed_out.failure, SlackFailure) and timed_out.failure.timeout
    [posted] = await eventually(lambda: _async(alerts.slack.to("C0LATE")))  # Slack took it
    found = await sender.find_posted("C0LATE", [9002], since=since)
    assert found is not None and found.slack_ts == posted.ts
    assert await sender.find_posted("C0LATE", [9003], since=since) is None  # another delivery
    # A direct message is looked for in the app's DM with the person.
    await sender.post("U0LATE", message, deliveries=[9004])
    in_dm = await sender.find_posted("U0LATE", [9004], since=since)
    assert in_dm is not None and in_dm.slack_channel == "D0LATE"
    assert len(alerts.slack.to("C0LATE")) == 1


async def test_429_waits_for_retry_after(alerts: Harness, unique: str) -> None:
    alerts.slack.script("U0RATE", [rate_limited(1)])
    alert_id = f"rate-{unique}"
    await alerts.request(make_alert(alert_id, recipient_ids=["rate.ae"]))
    await eventually(lambda: _sent(alerts, alert_id))
    first, second = alerts.slack.to("U0RATE")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # Retry-After: 1, with clock granularity
    assert await _attempts(alerts, alert_id) == ["retry", "sent"]


async def test_a_burst_to_one_channel_is_coalesced_into_a_summary(
    alerts: Harness, unique: str
) -> None:
    ids = [f"burst-{unique}-{i}" for i in range(8)]
    posts = await _post_all_to_channel(alerts, ids, "burst", "C0BURST")
    assert len(posts) < len(ids)
    summaries = [p for p in posts if p.text and " Tandem alerts" in p.text.splitlines()[0]]
    assert summaries, [p.text for p in posts]
    for alert_id in ids:
        assert any(f"Alert {alert_id}" in (p.text or "") for p in posts), alert_id
    coalesced = [r.coalesced for i in ids for r in await alerts.rows(i)]
    assert any(coalesced)


async def test_a_short_run_to_one_channel_is_paced_at_about_one_a_second(
    alerts: Harness, unique: str
) -> None:
    ids = [f"paced-{unique}-{i}" for i in range(5)]
    posts = await _post_all_to_channel(alerts, ids, "paced", "C0PACED")
    # Five within the pacing's 3-second patience: each goes alone, the burst of 3 back to back,
    # then one a second.
    assert len(posts) == len(ids)
    assert all((p.text or "").startswith(f"Alert {i} ") for p, i in zip(posts, ids, strict=True))
    at = [p.at for p in posts]
    # A token bucket: no window holds more than the burst of 3 plus one per second (+ jitter).
    for i, j in itertools.combinations(range(len(at)), 2):
        assert j - i + 1 <= 3 + (at[j] - at[i]) + 0.1, at
    assert at[-1] - at[0] < 4.0, at


async def test_an_urgent_alert_goes_before_the_normal_ones_queued_at_its_destination(
    alerts: Harness, unique: str
) -> None:
    normal = [f"ranked-{unique}-{i}" for i in range(4)]
    urgent = f"ranked-{unique}-urgent"
    await alerts.request(
        *(make_alert(i, channel_ids=["ranked"]) for i in normal),
        make_alert(urgent, channel_ids=["ranked"], urgency=Urgency.URGENT),
    )
    for alert_id in [*normal, urgent]:
        await eventually(lambda alert_id=alert_id: _sent(alerts, alert_id))
    order = [(p.text or "").split(" ", 2)[1] for p in alerts.slack.to("C0RANKED")]
    assert sorted(order) == sorted([*normal, urgent])  # each alone, none coalesced
    # Requested last, sent among the first: oldest-first would send it fifth. (The consumer may
    # record the first requests before the last, and the worker may send one meanwhile.)
    assert order.index(urgent) <= 1, order


async def test_circuit_opens_on_a_destination_that_keeps_failing(
    alerts: Harness, unique: str
) -> None:
    alerts.slack.script("C0FLAKY", [server_error(503)] * 10)
    alert_id = f"flaky-{unique}"
    await alerts.request(make_alert(alert_id, channel_ids=["flaky"]))
    circuit = await eventually(lambda: _circuit(alerts, "C0FLAKY"))
    assert circuit["state"] == "open"
    assert len(alerts.slack.to("C0FLAKY")) == 3  # the threshold, then the breaker holds
    [row] = await alerts.rows(alert_id)
    opened_at = datetime.fromisoformat(circuit["opened_at"])
    assert row.status == "pending" and row.attempts == 3
    assert row.due_at >= opened_at + timedelta(seconds=300)


async def test_a_permanent_error_fails_fast_to_the_dead_letter_topic(
    alerts: Harness, unique: str
) -> None:
    alerts.slack.script("C0GONE", [error("channel_not_found")])
    alert_id = f"gone-{unique}"
    await alerts.request(make_alert(alert_id, channel_ids=["gone"]))
    [(failed, _)] = await find_events(
        alerts.bootstrap, ALERT_DELIVERIES, lambda e, _: e.data.get("alert_id") == alert_id
    )
    assert failed.type == EventType.ALERT_FAILED
    assert failed.data["permanent"] is True and failed.data["attempts"] == 1
    assert "channel_not_found" in failed.data["error"]
    [(_dead, headers)] = await find_events(
        alerts.bootstrap, "tandem.dlq.alerts", lambda e, _: e.data.get("alert_id") == alert_id
    )
    assert b"channel_not_found" in headers["dlq.reason"]
    assert len(alerts.slack.to("C0GONE")) == 1
    assert await alerts.statuses(alert_id) == ["failed"]


async def test_a_refused_email_address_fails_fast_to_the_dead_letter_topic(
    alerts: Harness, unique: str
) -> None:
    alert_id = f"bounce-{unique}"
    await alerts.request(make_alert(alert_id, recipient_ids=["bounce.ae"]))
    [(failed, _)] = await find_events(
        alerts.bootstrap, ALERT_DELIVERIES, lambda e, _: e.data.get("alert_id") == alert_id
    )
    assert failed.type == EventType.ALERT_FAILED
    assert (failed.data["channel"], failed.data["permanent"], failed.data["attempts"]) == (
        "email",
        True,
        1,
    )
    assert "550" in failed.data["error"]
    await find_events(
        alerts.bootstrap, "tandem.dlq.alerts", lambda e, _: e.data.get("alert_id") == alert_id
    )
    assert await alerts.statuses(alert_id) == ["failed"]
    assert await _attempts(alerts, alert_id) == ["failed"]
    assert alerts.smtp.to("bounce.ae@tandem.example") == []


async def test_quiet_hours_defer_to_the_digest_and_urgent_tier_1_goes_to_the_cover(
    alerts: Harness, unique: str
) -> None:
    normal, urgent = f"quiet-{unique}", f"urgent-{unique}"
    await alerts.request(
        make_alert(normal, recipient_ids=["quiet.ae"]),
        make_alert(
            urgent,
            recipient_ids=["quiet.ae"],
            urgency=Urgency.URGENT,
            tier=Tier.T1,
            handoff_id=f"h-{urgent}",
        ),
    )
    [cover_message] = await eventually(lambda: _async(alerts.slack.to("U0COVER")))
    assert f"Alert {urgent}" in (cover_message.text or "")
    assert "covering for Quiet" in cover_message.block_text
    await eventually(lambda: _has_rows(alerts, normal))
    assert await alerts.statuses(normal) == ["deferred"]
    # Slack has the message before the worker records it as sent.
    rows = await eventually(lambda: _once_one_is(alerts, urgent, "sent"))
    assert {(r.recipient_id, r.status, r.on_behalf_of) for r in rows} == {
        ("cover.ae", "sent", "quiet.ae"),
        ("quiet.ae", "deferred", None),
    }
    assert alerts.slack.to("U0QUIET") == []
    # What the SLA monitor reads to let the cover's touch count for the handoff.
    [(delivered, _)] = await find_events(
        alerts.bootstrap,
        ALERT_DELIVERIES,
        lambda e, _: e.type == EventType.ALERT_DELIVERED and e.data["alert_id"] == urgent,
    )
    assert (delivered.data["recipient_id"], delivered.data["on_behalf_of"]) == (
        "cover.ae",
        "quiet.ae",
    )
    assert delivered.data["handoff_id"] == f"h-{urgent}"


async def test_a_due_digest_groups_the_deferred_alerts(alerts: Harness, unique: str) -> None:
    ids = [f"digest-{unique}-{i}" for i in range(2)]
    await alerts.request(
        *(make_alert(i, recipient_ids=["digest.ae"], urgency=Urgency.LOW) for i in ids)
    )
    for alert_id in ids:
        await eventually(lambda alert_id=alert_id: _has_rows(alerts, alert_id))
    assert alerts.slack.to("U0DIGEST") == []
    async with alerts.engine.begin() as conn:  # the last digest went out two hours ago
        await conn.execute(
            sa.update(digests)
            .where(digests.c.recipient_id == "digest.ae")
            .values(last_sent_at=utcnow() - timedelta(hours=2))
        )
    [digest] = await eventually(lambda: _async(alerts.slack.to("U0DIGEST")))
    assert "Your Tandem digest: 2 alerts" in digest.block_text
    assert all(f"Alert {i}" in digest.block_text for i in ids)
    for alert_id in ids:
        [row] = await eventually(lambda alert_id=alert_id: _sent(alerts, alert_id))
        assert row.coalesced


async def test_one_delivery_per_recipient_and_channel_when_a_request_repeats(
    alerts: Harness, unique: str
) -> None:
    alert = make_alert(
        f"once-{unique}", recipient_ids=["once.ae"], account_key=f"once-{unique}.com"
    )
    sentinel = make_alert(
        f"sentinel-{unique}", recipient_ids=["sentinel.ae"], account_key=f"once-{unique}.com"
    )
    # The same envelope twice (a redelivery) and a re-emitted request with a new envelope id.
    await alerts.request(
        alert, alert, alert, envelope_ids=[f"env-{unique}", f"env-{unique}", f"env2-{unique}"]
    )
    await alerts.request(sentinel)  # same account key: same partition, handled after the three
    await eventually(lambda: _sent(alerts, f"sentinel-{unique}"))
    await eventually(lambda: _all_sent(alerts, f"once-{unique}", 2))
    assert len([m for m in alerts.slack.to("U0ONCE") if f"once-{unique}" in m.block_text]) == 1
    assert len(alerts.smtp.to("once.ae@tandem.example")) == 1
    delivered = await find_events(
        alerts.bootstrap,
        ALERT_DELIVERIES,
        lambda e, _: e.data.get("alert_id") == f"once-{unique}",
        count=2,
    )
    assert sorted(e.data["channel"] for e, _ in delivered) == ["email", "slack"]


def _signed(
    body: bytes, *, secret: str = SIGNING_SECRET, at: datetime | None = None
) -> dict[str, str]:
    timestamp = str(int((at or utcnow()).timestamp()))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(
            timestamp=timestamp, body=body
        ),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_slack_interactions_are_verified_and_publish_the_acknowledgement(
    alerts: Harness, unique: str
) -> None:
    handoff = f"h-ack-{unique}"
    payload = {
        "type": "block_actions",
        "user": {"id": "U0CLICKER"},
        "team": {"id": "T0TANDEM1"},
        "actions": [{"action_id": "ack_handoff", "value": handoff, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    transport = httpx.ASGITransport(app=alerts.service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alerts") as client:
        url = "/v1/slack/interactions"
        wrong = await client.post(url, content=body, headers=_signed(body, secret="not-the-secret"))
        stale = await client.post(
            url, content=body, headers=_signed(body, at=utcnow() - timedelta(minutes=6))
        )
        good = await client.post(url, content=body, headers=_signed(body))
    assert (wrong.status_code, stale.status_code, good.status_code) == (401, 401, 200)
    [(event, _)] = await find_events(
        alerts.bootstrap, HANDOFF_ACTIONS, lambda e, _: e.data.get("handoff_id") == handoff
    )
    # An Acknowledge button of an older message: a request the router decides (it knows the
    # handoff; alerts has never heard of this one, so it lets the router answer).
    assert event.type == EventType.HANDOFF_ACTION_REQUESTED
    assert (event.data["actor_id"], event.data["via"]) == ("clicker.ae", "slack")
    assert event.data["action"] == "acknowledge"


async def _post_all_to_channel(
    alerts: Harness, ids: list[str], channel_id: str, slack_channel: str
) -> list[Received]:
    """Request one alert per id to a directory channel; return the posts once all are sent."""
    await alerts.request(*(make_alert(i, channel_ids=[channel_id]) for i in ids))
    for alert_id in ids:
        await eventually(lambda alert_id=alert_id: _sent(alerts, alert_id))
    return alerts.slack.to(slack_channel)


def _crm_records() -> dict[str, str]:
    """Return recipient -> record page, each from its vendor's webhook through ingest's parsing."""
    at = utcnow()
    contact = [{"objectId": 501, "portalId": 62515, "subscriptionType": "contact.creation"}]
    as_sent = HubSpotConfig(fetch_records=False)  # the record as the webhook names it
    parsed = normalize_hubspot(json.dumps(contact).encode(), config=as_sent, received_at=at)
    hubspot = parsed.events[0]
    outbound = (FIXTURES / "salesforce/outbound_message_opportunity.xml").read_bytes()
    config = SalesforceConfig(allowed_org_ids=frozenset({"00D5e000000KQ2e"}))
    salesforce = normalize_salesforce_outbound(outbound, config=config, received_at=at).events[0]
    return {
        "hubspot.ae": hubspot.payload.crm_url,  # type: ignore[attr-defined]
        "salesforce.ae": salesforce.payload.crm_url,  # type: ignore[attr-defined]
    }


async def test_slack_and_email_open_the_hubspot_and_salesforce_records(
    alerts: Harness, unique: str
) -> None:
    records = _crm_records()
    assert records == {
        "hubspot.ae": "https://app.hubspot.com/contacts/62515/record/0-1/501",
        "salesforce.ae": (
            "https://acme.lightning.force.com/lightning/r/Opportunity/0065e00000Bq3XyAAJ/view"
        ),
    }
    for person, url in records.items():
        await alerts.request(
            make_alert(f"crm-{person}-{unique}", recipient_ids=[person], crm_url=url)
        )
    for (person, url), slack_id in zip(records.items(), ("U0HUBSPOT", "U0SFORCE"), strict=True):
        [message] = await eventually(lambda s=slack_id: _async(alerts.slack.to(s)))
        buttons = [e for b in message.blocks for e in b.get("elements", []) if e.get("url")]
        assert [(b["text"]["text"], b["url"]) for b in buttons] == [("Open in CRM", url)]
        address = f"{person}@tandem.example"
        [mail] = await eventually(lambda a=address: _async(alerts.smtp.to(a)))
        html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f'<a href="{url}"' in html and "Open in CRM" in html
        assert f"Open in CRM: {url}" in text


async def _async(value: list[Received] | list[EmailMessage]) -> Any:
    return value


async def _has_rows(alerts: Harness, alert_id: str) -> list[sa.Row[Any]]:
    return await alerts.rows(alert_id)


async def _sent(alerts: Harness, alert_id: str) -> list[sa.Row[Any]]:
    rows = await alerts.rows(alert_id)
    return rows if rows and all(r.status == "sent" for r in rows) else []


async def _once_one_is(alerts: Harness, alert_id: str, status: str) -> list[sa.Row[Any]]:
    rows = await alerts.rows(alert_id)
    return rows if any(r.status == status for r in rows) else []


async def _all_sent(alerts: Harness, alert_id: str, count: int) -> bool:
    rows = await alerts.rows(alert_id)
    return len(rows) == count and all(r.status == "sent" for r in rows)


async def _attempts(alerts: Harness, alert_id: str) -> list[str]:
    query = (
        sa.select(delivery_attempts.c.outcome)
        .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
        .where(deliveries.c.alert_id == alert_id)
        .order_by(delivery_attempts.c.attempt)
    )
    async with alerts.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def _circuit(alerts: Harness, destination: str) -> dict[str, Any] | None:
    circuit = await alerts.scalar(
        sa.select(destinations.c.circuit).where(destinations.c.destination == destination)
    )
    return circuit if circuit and circuit.get("state") == "open" else None
