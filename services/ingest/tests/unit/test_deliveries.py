"""Authenticating and normalizing a delivery according to its source's kind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tandem_ingest.domain.deliveries import (
    Delivery,
    accepts_content_type,
    authenticate,
    normalize,
    surge_reader,
)
from tandem_ingest.domain.errors import OrganizationNotAllowedError, SignatureError
from tandem_ingest.domain.signatures import sign_segment, sign_standard_webhook
from tandem_ingest.domain.sources import Source, SourceKind, parse_sources

NOW = datetime(2025, 1, 6, 16, 0, tzinfo=UTC)


def source(kind: str, **entry: Any) -> Source:
    spec = {"name": "s", "kind": kind, **entry}
    if not entry.get("unsigned"):
        spec.setdefault("dev_secrets", ["secret-1"])
    return parse_sources({"sources": [spec]}, environ={}, production=False)["s"]


def test_generic_and_cdc_use_standard_webhooks() -> None:
    body = b'{"kind": "x"}'
    timestamp = int(NOW.timestamp())
    signature = sign_standard_webhook(
        body=body, msg_id="m1", timestamp=timestamp, secret="secret-1"
    )
    headers = {
        "webhook-id": "m1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    delivery = Delivery(body=body, headers=headers, method="POST", uri="http://x/")
    for kind in ("generic", "salesforce_cdc"):
        assert authenticate(source(kind), delivery, now=NOW) == "standard-webhooks"


def test_segment_uses_x_signature() -> None:
    body = b"{}"
    headers = {"X-Signature": sign_segment(body=body, secret="secret-1")}
    delivery = Delivery(body=body, headers=headers, method="POST", uri="http://x/")
    assert authenticate(source("segment"), delivery, now=NOW) == "segment-hmac-sha1"
    with pytest.raises(SignatureError):
        authenticate(source("generic"), delivery, now=NOW)


def test_every_scheme_accepts_each_active_secret_during_a_rotation() -> None:
    import hashlib

    rotating = ["secret-new", "secret-old"]
    body = b"[]"
    uri = "http://x/v1/webhooks/s"
    for secret in rotating:
        segment = {"X-Signature": sign_segment(body=body, secret=secret)}
        legacy_v2 = {
            "X-HubSpot-Signature": hashlib.sha256(f"{secret}POST{uri}".encode() + body).hexdigest(),
            "X-HubSpot-Signature-Version": "v2",
        }
        cases = [("segment", segment, None), ("hubspot", legacy_v2, None), ("bombora", {}, secret)]
        for kind, headers, token in cases:
            delivery = Delivery(body=body, headers=headers, method="POST", uri=uri, token=token)
            assert authenticate(source(kind, dev_secrets=rotating), delivery, now=NOW)
            with pytest.raises(SignatureError):
                authenticate(source(kind, dev_secrets=["secret-other"]), delivery, now=NOW)


@pytest.mark.parametrize("kind", ["salesforce_outbound", "clearbit"])
def test_unsigned_vendors_need_the_shared_token_unless_declared_unsigned(kind: str) -> None:
    def delivery(token: str | None) -> Delivery:
        return Delivery(body=b"", headers={}, method="POST", uri="http://x/", token=token)

    assert authenticate(source(kind), delivery("secret-1"), now=NOW) == "token"
    for wrong in (None, "secret-2"):
        with pytest.raises(SignatureError):
            authenticate(source(kind), delivery(wrong), now=NOW)
    assert authenticate(source(kind, unsigned=True), delivery(None), now=NOW) == "none"


def test_hubspot_legacy_signatures_follow_the_source_setting() -> None:
    import hashlib

    body = b"[]"
    headers = {"X-HubSpot-Signature": hashlib.sha256(b"secret-1" + body).hexdigest()}
    delivery = Delivery(body=body, headers=headers, method="POST", uri="http://x/")
    assert authenticate(source("hubspot"), delivery, now=NOW) == "hubspot-v1"
    with pytest.raises(SignatureError, match="only v3"):
        authenticate(source("hubspot", allow_legacy_signatures=False), delivery, now=NOW)


def test_normalize_dispatches_with_the_source_config(
    vendor_sample: Callable[[str], bytes],
) -> None:
    outbound = vendor_sample("salesforce/outbound_message_opportunity.xml")
    allowed = source("salesforce_outbound", config={"allowed_org_ids": ["00D5e000000KQ2e"]})
    assert normalize(allowed, outbound, received_at=NOW).events
    with pytest.raises(OrganizationNotAllowedError):
        normalize(source("salesforce_outbound"), outbound, received_at=NOW)
    hubspot = normalize(
        source("hubspot"), vendor_sample("hubspot/webhook_batch_docs_example.json"), received_at=NOW
    )
    assert (len(hubspot.events), len(hubspot.lookups)) == (1, 1)  # the new contact waits


def test_uploads_and_webhooks_do_not_mix() -> None:
    with pytest.raises(ValueError, match="uploads"):
        normalize(source("bombora"), b"", received_at=NOW)
    with pytest.raises(ValueError, match="webhooks"):
        surge_reader(source("generic"), observed_on=NOW.date())
    assert surge_reader(source("bombora"), observed_on=NOW.date()).rows == 0


@pytest.mark.parametrize(
    ("kind", "header", "accepted"),
    [
        (SourceKind.HUBSPOT, "application/json", True),
        (SourceKind.GENERIC, "application/json; charset=utf-8", True),
        (SourceKind.SEGMENT, "application/vnd.segment+json", True),
        (SourceKind.GENERIC, "text/plain", False),
        (SourceKind.GENERIC, None, False),
        (SourceKind.SALESFORCE_OUTBOUND, "text/xml; charset=utf-8", True),
        (SourceKind.SALESFORCE_OUTBOUND, "application/json", False),
        (SourceKind.BOMBORA, "text/csv", True),
        (SourceKind.BOMBORA, "application/json", False),
    ],
)
def test_content_types_per_kind(kind: SourceKind, header: str | None, accepted: bool) -> None:
    assert accepts_content_type(kind, header) is accepted
