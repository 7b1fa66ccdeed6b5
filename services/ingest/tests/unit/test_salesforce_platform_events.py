from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tandem_ingest.domain.errors import SchemaError
from tandem_ingest.domain.salesforce import SalesforceConfig, normalize_salesforce_cdc
from tandem_ingest.domain.salesforce_records import PlatformEventMapping
from tandem_shared.events import DealUpserted, EventType, RecordDeleted

CONFIG = SalesforceConfig(
    platform_events={
        "Deal_Change__e": PlatformEventMapping(
            sobject="Opportunity",
            record_id_field="Opportunity_Id__c",
            fields={"Stage__c": "StageName", "Amount__c": "Amount"},
            deleted_field="Is_Deleted__c",
        )
    }
)


def _cometd(name: str, **payload: Any) -> dict[str, Any]:
    # The shape Salesforce's docs show for a Platform Event received over CometD.
    return {
        "data": {
            "schema": "dffQ2QLzDNHqwB8_sHMxdA",
            "payload": {
                "CreatedDate": "2025-01-06T15:42:10Z",
                "CreatedById": "005D0000001cSZs",
                **payload,
            },
            "event": {"replayId": 12, "EventUuid": "b1e7c0d2-5d0c-4a6b-9d0e-3a1f6b8e2c11"},
        },
        "channel": f"/event/{name}",
    }


def test_a_mapped_platform_event_becomes_the_records_canonical_change(
    received_at: datetime,
) -> None:
    message = _cometd(
        "Deal_Change__e", Opportunity_Id__c="0065e00000Bq3XyAAJ", Stage__c="Closed Won"
    )

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert event.type == EventType.DEAL_UPSERTED
    assert isinstance(event.payload, DealUpserted)
    assert (event.payload.crm_id, event.payload.stage) == ("0065e00000Bq3XyAAJ", "Closed Won")
    assert event.payload.changed == {"StageName": "Closed Won"}
    assert event.occurred_at == datetime(2025, 1, 6, 15, 42, 10, tzinfo=UTC)
    assert event.dedupe_key == "Deal_Change__e:b1e7c0d2-5d0c-4a6b-9d0e-3a1f6b8e2c11"


def test_the_delete_checkbox_makes_a_tombstone(received_at: datetime) -> None:
    message = _cometd("Deal_Change__e", Opportunity_Id__c="006A", Is_Deleted__c=True)

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert isinstance(event.payload, RecordDeleted)
    assert (event.payload.object_type, event.payload.crm_id) == ("deal", "006A")


def test_without_event_uuid_the_replay_id_names_the_event(received_at: datetime) -> None:
    message = _cometd("Deal_Change__e", Opportunity_Id__c="006A")
    del message["data"]["event"]["EventUuid"]

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert event.dedupe_key == "Deal_Change__e:replay:12"


def test_an_unmapped_platform_event_is_ignored(received_at: datetime) -> None:
    message = _cometd("Printer_Low_Ink__e", Serial_Number__c="12345")

    result = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at)

    assert (result.events, result.errors, result.ignored) == ((), (), 1)


def test_platform_event_errors_point_at_the_event_field(received_at: datetime) -> None:
    batch = [
        _cometd("Deal_Change__e", Opportunity_Id__c="006A", Amount__c="a lot"),
        _cometd("Deal_Change__e", Stage__c="Prospecting"),
        _cometd("Deal_Change__e", Opportunity_Id__c="006B", Amount__c="1200.5"),
    ]

    result = normalize_salesforce_cdc(batch, config=CONFIG, received_at=received_at)

    assert [e.payload.amount for e in result.events] == [1200.5]  # type: ignore[attr-defined]
    assert [(e.index, e.loc) for e in result.errors] == [
        (0, (0, "data", "payload", "Amount__c")),
        (1, (1, "data", "payload", "Opportunity_Id__c")),
    ]


def test_a_cometd_wrapped_change_event_is_read_like_a_bare_one(received_at: datetime) -> None:
    message = {
        "channel": "/data/OpportunityChangeEvent",
        "data": {
            "payload": {
                "ChangeEventHeader": {
                    "entityName": "Opportunity",
                    "recordIds": ["006A"],
                    "changeType": "UPDATE",
                    "transactionKey": "tx-1",
                    "sequenceNumber": 3,
                    "commitTimestamp": 1736178130000,
                },
                "StageName": "Negotiation",
            },
            "event": {"replayId": 99},
        },
    }

    (event,) = normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at).events

    assert event.payload.stage == "Negotiation"  # type: ignore[attr-defined]
    assert event.dedupe_key == "tx-1:3:006A"


def test_a_platform_event_mapping_names_a_supported_object() -> None:
    with pytest.raises(ValueError, match="sobject"):
        SalesforceConfig.model_validate(
            {"platform_events": {"X__e": {"sobject": "Case", "record_id_field": "Case_Id__c"}}}
        )


def test_without_a_channel_a_header_less_message_is_a_schema_error(
    received_at: datetime,
) -> None:
    message = _cometd("Deal_Change__e", Opportunity_Id__c="006A")
    del message["channel"]

    with pytest.raises(SchemaError) as caught:
        normalize_salesforce_cdc(message, config=CONFIG, received_at=received_at)

    assert caught.value.errors[0].loc == ("data", "payload", "ChangeEventHeader")
