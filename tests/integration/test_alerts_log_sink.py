"""Without Slack or SMTP credentials alerts go to the log sink, which says who covers for whom."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import Infra, _create_database
from in_process import running
from structlog.testing import capture_logs
from test_alerts_support import eventually, find_events

from kafka_tools import produce_envelopes, start_group_at_end
from tandem_alerts.adapters.tables import deliveries
from tandem_alerts.main import MIGRATIONS, SCHEMA, build_service
from tandem_alerts.settings import AlertsOptions, AlertsSettings
from tandem_shared.db import create_engine, migrate
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import AlertKind, AlertRequested, EventType, Tier, Urgency
from tandem_shared.settings import DatabaseSettings
from tandem_shared.topics import ALERT_DELIVERIES, ALERT_REQUESTS

pytestmark = pytest.mark.integration


def _people() -> dict[str, Any]:
    now = utcnow()
    quiet = {
        "start": (now - timedelta(hours=2)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    return {
        "people": [
            {
                "id": "ava.ae",
                "name": "Ava",
                "email": "ava@tandem.example",
                "role": "ae",
                "team": "sales",
                "cover_id": "ben.ae",
                "preferences": {"channels": ["slack"], "quiet_hours": quiet},
            },
            {
                "id": "ben.ae",
                "name": "Ben",
                "email": "ben@tandem.example",
                "role": "ae",
                "team": "sales",
            },
        ]
    }


async def test_an_urgent_tier_1_alert_in_quiet_hours_is_logged_as_covering(
    infra: Infra, tmp_path: Path, unique: str
) -> None:
    database = DatabaseSettings(url=await _create_database(infra.database_url))
    await migrate(settings=database, schema=SCHEMA, script_location=MIGRATIONS)
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(_people()))
    settings = AlertsSettings(
        env="test",
        service="alerts",
        config_dir=tmp_path,
        kafka=infra.settings().kafka,
        database=database,
        alerts=AlertsOptions(poll_seconds=0.05),
    )
    assert (settings.transports.slack, settings.transports.email) == (False, False)
    group = f"alerts-log-{unique}"
    await start_group_at_end(infra.bootstrap_servers, group, [ALERT_REQUESTS])
    service = build_service(settings, group=group)
    alert_id = f"cover-{unique}"
    alert = AlertRequested(
        alert_id=alert_id,
        kind=AlertKind.HANDOFF,
        urgency=Urgency.URGENT,
        tier=Tier.T1,
        recipient_ids=["ava.ae"],
        title="Acme requested a meeting",
        account_key=f"{unique}.com",
        assignee_id="ava.ae",
        reason="ava.ae owns the account as its AE",
        requested_at=utcnow(),
    )
    async with running(service.infra):
        with capture_logs() as lines:
            await produce_envelopes(
                infra.bootstrap_servers,
                ALERT_REQUESTS,
                [
                    Envelope.wrap(
                        alert, type=EventType.ALERT_REQUESTED, source="/test", subject=None
                    )
                ],
            )
            [line] = await eventually(lambda: _sink_lines(lines, alert_id))
            # The relay publishes the outcome; wait for it before the loops stop.
            delivered = await find_events(
                infra.bootstrap_servers,
                ALERT_DELIVERIES,
                lambda e, _: e.data["alert_id"] == alert_id,
            )
    assert line["event"] == (
        "ALERT for ben.ae, covering for ava.ae (quiet hours): Acme requested a meeting"
    )
    assert (line["covering_for"], line["cover_reason"]) == ("ava.ae", "quiet hours")
    assert line["reason"] == "ava.ae owns the account as its AE"
    engine = create_engine(database, schema=SCHEMA)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(deliveries).where(deliveries.c.alert_id == alert_id)
            )
            got = {(r.recipient_id, r.channel, r.status, r.on_behalf_of) for r in rows}
    finally:
        await engine.dispose()
    assert got == {("ben.ae", "log", "sent", "ava.ae"), ("ava.ae", "log", "deferred", None)}
    assert [(e.type, e.data["recipient_id"], e.data["on_behalf_of"]) for e, _ in delivered] == [
        (EventType.ALERT_DELIVERED, "ben.ae", "ava.ae")
    ]


async def _sink_lines(lines: list[dict[str, Any]], alert_id: str) -> list[dict[str, Any]]:
    """Return the log sink's lines about one alert."""
    return [x for x in lines if x.get("alert_id") == alert_id and "ALERT for" in x["event"]]
