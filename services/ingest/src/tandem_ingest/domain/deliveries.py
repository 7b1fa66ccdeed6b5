"""One delivery from a source: authenticate it per its kind, then normalize its body."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from tandem_ingest.domain.bombora import BomboraConfig, SurgeFileReader
from tandem_ingest.domain.clearbit import ClearbitConfig, normalize_clearbit
from tandem_ingest.domain.errors import SignatureError
from tandem_ingest.domain.generic import GenericConfig, normalize_generic
from tandem_ingest.domain.hubspot import HubSpotConfig, normalize_hubspot
from tandem_ingest.domain.normalized import NormalizeResult
from tandem_ingest.domain.outreach import OutreachConfig, normalize_outreach
from tandem_ingest.domain.salesforce import (
    SalesforceConfig,
    normalize_salesforce_cdc,
    normalize_salesforce_outbound,
)
from tandem_ingest.domain.segment import SegmentConfig, normalize_segment
from tandem_ingest.domain.signatures import (
    verify_hubspot,
    verify_outreach,
    verify_segment,
    verify_standard_webhook,
)
from tandem_ingest.domain.sources import Source, SourceKind

STANDARD_WEBHOOKS = "standard-webhooks"
SEGMENT_HMAC = "segment-hmac-sha1"
OUTREACH_HMAC = "outreach-hmac-sha256"
SHARED_TOKEN = "token"  # noqa: S105 - the name of a scheme, not a secret
UNSIGNED = "none"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a vendor sent: raw body bytes, headers, and the exact URL it called."""

    body: bytes
    headers: Mapping[str, str]
    method: str
    uri: str  # scheme://host/raw-path?raw-query, as the vendor called it
    token: str | None = None  # a shared token (`?token=` or a bearer token) for unsigned vendors


def authenticate(source: Source, delivery: Delivery, *, now: datetime) -> str:
    """Verify the delivery is from the source's vendor; return the scheme that proved it."""
    if source.kind is SourceKind.HUBSPOT:
        scheme = verify_hubspot(
            body=delivery.body,
            headers=delivery.headers,
            method=delivery.method,
            uri=delivery.uri,
            secrets=source.secrets,
            now=now,
            allow_legacy=source.spec.allow_legacy_signatures,
        )
        return f"hubspot-{scheme.value}"
    if source.kind is SourceKind.SEGMENT:
        verify_segment(body=delivery.body, headers=delivery.headers, secrets=source.secrets)
        return SEGMENT_HMAC
    if source.kind is SourceKind.OUTREACH:
        verify_outreach(body=delivery.body, headers=delivery.headers, secrets=source.secrets)
        return OUTREACH_HMAC
    if source.kind in (SourceKind.GENERIC, SourceKind.SALESFORCE_CDC):
        verify_standard_webhook(
            body=delivery.body, headers=delivery.headers, secrets=source.secrets, now=now
        )
        return STANDARD_WEBHOOKS
    return check_token(source, delivery.token)


def check_token(source: Source, token: str | None) -> str:
    """Check the shared token of a vendor that cannot sign; return the scheme used."""
    if source.spec.unsigned:
        return UNSIGNED
    if not token:
        raise SignatureError("missing token: this source needs ?token= or a bearer token")
    given = token.encode()
    if not any(hmac.compare_digest(given, secret.encode()) for secret in source.secrets):
        raise SignatureError("token mismatch")
    return SHARED_TOKEN


Normalizer = Callable[[Source, bytes, datetime], NormalizeResult]


def _hubspot(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    config = source.config if isinstance(source.config, HubSpotConfig) else None
    return normalize_hubspot(body, config=config, received_at=received_at)


def _salesforce_config(source: Source) -> SalesforceConfig:
    return source.config if isinstance(source.config, SalesforceConfig) else SalesforceConfig()


def _salesforce_outbound(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    config = _salesforce_config(source)
    return normalize_salesforce_outbound(body, config=config, received_at=received_at)


def _salesforce_cdc(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    config = _salesforce_config(source)
    return normalize_salesforce_cdc(body, config=config, received_at=received_at)


def _segment(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    config = source.config if isinstance(source.config, SegmentConfig) else None
    return normalize_segment(body, config=config, received_at=received_at)


def _clearbit(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    config = source.config if isinstance(source.config, ClearbitConfig) else None
    return normalize_clearbit(body, config=config, received_at=received_at)


def _generic(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    config = source.config if isinstance(source.config, GenericConfig) else None
    return normalize_generic(body, received_at=received_at, config=config)


def _outreach(source: Source, body: bytes, received_at: datetime) -> NormalizeResult:
    if not isinstance(source.config, OutreachConfig):
        raise TypeError(f"source {source.name!r} has no Outreach config")
    return normalize_outreach(body, config=source.config, received_at=received_at)


_NORMALIZERS: dict[SourceKind, Normalizer] = {
    SourceKind.HUBSPOT: _hubspot,
    SourceKind.SALESFORCE_OUTBOUND: _salesforce_outbound,
    SourceKind.SALESFORCE_CDC: _salesforce_cdc,
    SourceKind.SEGMENT: _segment,
    SourceKind.CLEARBIT: _clearbit,
    SourceKind.GENERIC: _generic,
    SourceKind.OUTREACH: _outreach,
}


def normalize(source: Source, body: bytes, *, received_at: datetime) -> NormalizeResult:
    """Normalize a webhook body of the source's kind (uploads go through `surge_reader`)."""
    normalizer = _NORMALIZERS.get(source.kind)
    if normalizer is None:
        raise ValueError(f"a {source.kind} source takes uploads, not webhooks")
    return normalizer(source, body, received_at)


def surge_reader(source: Source, *, observed_on: date) -> SurgeFileReader:
    """Return an incremental reader of an upload of the source's kind."""
    if source.kind is not SourceKind.BOMBORA:
        raise ValueError(f"a {source.kind} source takes webhooks, not uploads")
    config = source.config if isinstance(source.config, BomboraConfig) else None
    return SurgeFileReader(observed_on=observed_on, config=config)


_JSON = frozenset({"application/json"})
_CONTENT_TYPES: dict[SourceKind, frozenset[str]] = {
    SourceKind.SALESFORCE_OUTBOUND: frozenset({"text/xml", "application/soap+xml"}),
    SourceKind.BOMBORA: frozenset({"text/csv", "application/csv"}),
}


def accepts_content_type(kind: SourceKind, header: str | None) -> bool:
    """Return whether a Content-Type header (parameters ignored) suits the source's kind."""
    media_type = (header or "").split(";", 1)[0].strip().lower()
    accepted = _CONTENT_TYPES.get(kind, _JSON)
    return media_type in accepted or (accepted is _JSON and media_type.endswith("+json"))


def accepted_content_types(kind: SourceKind) -> list[str]:
    """Return the media types a source of this kind accepts, for the 415 answer."""
    return sorted(_CONTENT_TYPES.get(kind, _JSON))
