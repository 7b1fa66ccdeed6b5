"""Outreach webhooks: the signature, and activity mapped from the JSON:API payloads (pure)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tandem_ingest.domain.errors import SchemaError, SignatureError
from tandem_ingest.domain.outreach import (
    ACTIVITY,
    OutreachConfig,
    OutreachRecords,
    build_outreach_event,
    normalize_outreach,
    outreach_reads,
)
from tandem_ingest.domain.signatures import sign_outreach, verify_outreach
from tandem_shared.events import ActivityKind, ActivityLogged, CrmSystem, EventType

RECEIVED = datetime(2025, 1, 6, 16, 0, tzinfo=UTC)
CONFIG = OutreachConfig(crm=CrmSystem.SALESFORCE)


def _webhook(
    resource: str, action: str, attributes: dict[str, Any], **relationships: Any
) -> dict[str, Any]:
    return {
        "data": {
            "type": resource,
            "id": 4417,
            "attributes": attributes,
            "relationships": {
                name: {"data": {"type": kind, "id": ident}}
                for name, (kind, ident) in relationships.items()
            },
        },
        "meta": {"deliveredAt": "2025-01-06T16:00:05.000Z", "eventName": f"{resource}.{action}"},
    }


def test_the_signature_is_hex_hmac_sha256_of_the_body_with_any_active_secret() -> None:
    body = orjson.dumps(_webhook("call", "created", {}))
    signature = hmac.new(b"new-secret", body, hashlib.sha256).hexdigest()
    assert sign_outreach(body=body, secret="new-secret") == signature
    headers = {"Outreach-Webhook-Signature": signature.upper()}
    verify_outreach(body=body, headers=headers, secrets=["old-secret", "new-secret"])
    with pytest.raises(SignatureError, match="mismatch"):
        verify_outreach(body=body + b" ", headers=headers, secrets=["new-secret"])
    with pytest.raises(SignatureError, match="missing Outreach-Webhook-Signature"):
        verify_outreach(body=body, headers={}, secrets=["new-secret"])


def test_a_call_waits_for_the_reps_and_the_prospects_emails() -> None:
    body = _webhook(
        "call",
        "created",
        {"completedAt": "2025-01-06T15:58:00.000Z", "direction": "outbound"},
        user=("user", 12),
        prospect=("prospect", 901),
    )
    result = normalize_outreach(orjson.dumps(body), config=CONFIG, received_at=RECEIVED)
    [lookup] = result.lookups
    assert lookup.kind == ACTIVITY and lookup.dedupe_key == "call:4417:created"
    assert lookup.request == {
        "activity_id": "outreach:call:4417",
        "kind": "call",
        "occurred_at": "2025-01-06T15:58:00+00:00",
        "subject": None,
        "crm": "salesforce",
        "user": "12",
        "prospect": "901",
        "account": None,
    }
    assert outreach_reads([lookup]) == ({"12"}, {"901"}, set())


@pytest.mark.parametrize(
    ("resource", "action", "attributes", "kind"),
    [
        ("mailing", "delivered", {"deliveredAt": "2025-01-06T15:00:00Z"}, ActivityKind.EMAIL),
        ("mailing", "replied", {"repliedAt": "2025-01-06T15:30:00Z"}, ActivityKind.OTHER),
        ("task", "completed", {"action": "call"}, ActivityKind.CALL),
        ("task", "completed", {"action": "in_person"}, ActivityKind.MEETING),
        ("task", "completed", {"action": "action_item"}, ActivityKind.TASK),
        ("kaiaRecording", "created", {}, ActivityKind.MEETING),
    ],
)
def test_mailings_tasks_and_meetings_map_to_their_kind(
    resource: str, action: str, attributes: dict[str, Any], kind: ActivityKind
) -> None:
    body = _webhook(resource, action, attributes, user=("user", 12))
    [lookup] = normalize_outreach(body, config=CONFIG, received_at=RECEIVED).lookups
    assert lookup.request["kind"] == kind.value


def test_other_events_are_ignored_and_a_bad_payload_names_the_field() -> None:
    opened = normalize_outreach(
        _webhook("mailing", "opened", {}), config=CONFIG, received_at=RECEIVED
    )
    assert (opened.lookups, opened.events, opened.ignored) == ((), (), 1)
    with pytest.raises(SchemaError) as refused:
        normalize_outreach({"data": {"type": "call", "id": 1}}, config=CONFIG, received_at=RECEIVED)
    assert [e.loc for e in refused.value.errors] == [("meta",)]


def test_a_task_on_an_account_and_a_naive_delivery_time() -> None:
    body = _webhook("task", "completed", {}, owner=("user", 3), subject=("account", 8))
    body["meta"]["deliveredAt"] = "2025-01-06T16:00:05"  # Outreach's example has no offset
    [lookup] = normalize_outreach(body, config=CONFIG, received_at=RECEIVED).lookups
    assert (lookup.request["user"], lookup.request["account"]) == ("3", "8")
    assert lookup.request["occurred_at"] == "2025-01-06T16:00:05+00:00"


def test_the_event_names_the_rep_and_the_prospect_from_outreachs_api() -> None:
    body = _webhook("call", "created", {}, user=("user", 12), prospect=("prospect", 901))
    [lookup] = normalize_outreach(body, config=CONFIG, received_at=RECEIVED).lookups
    records = OutreachRecords(
        user_emails={"12": "Rita.Rep@Tandem.example"},
        prospects={"901": ("Dana@Gmail.com", "44")},
        account_domains={"44": "https://www.acme.com/"},
    )
    event = build_outreach_event(lookup, records)
    payload = event.payload
    assert isinstance(payload, ActivityLogged) and event.type == EventType.ACTIVITY_LOGGED
    assert (payload.actor_id, payload.contact_email) == (
        "rita.rep@tandem.example",
        "dana@gmail.com",
    )
    assert (payload.account_key, payload.crm, payload.source) == (
        "acme.com",
        CrmSystem.SALESFORCE,
        "outreach",
    )
    assert event.event_id == lookup.event_id


def test_without_fetching_the_event_keeps_outreachs_ids() -> None:
    config = OutreachConfig(crm=CrmSystem.HUBSPOT, fetch_records=False)
    body = _webhook("call", "created", {}, user=("user", 12), prospect=("prospect", 901))
    [event] = normalize_outreach(body, config=config, received_at=RECEIVED).events
    assert event.payload.actor_id == "outreach:user:12"  # type: ignore[attr-defined]
    assert event.subject is None
