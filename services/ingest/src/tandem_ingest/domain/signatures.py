"""Webhook signature verification for every scheme the vendors use; constant-time comparisons."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from tandem_ingest.domain.errors import SignatureError
from tandem_ingest.domain.parsing import from_epoch, require_aware

__all__ = [
    "HubSpotScheme",
    "SignatureError",
    "hubspot_v3_uri",
    "request_uri",
    "sign_hubspot_v3",
    "sign_outreach",
    "sign_segment",
    "sign_standard_webhook",
    "verify_hubspot",
    "verify_outreach",
    "verify_segment",
    "verify_standard_webhook",
]

DEFAULT_TOLERANCE = timedelta(minutes=5)

# HubSpot v3 decodes exactly these escapes in the URI before signing and leaves every other one.
_HUBSPOT_DECODED = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)
_WHSEC_PREFIX = "whsec_"


class HubSpotScheme(StrEnum):
    """HubSpot's signature versions, newest first."""

    V3 = "v3"
    V2 = "v2"
    V1 = "v1"


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    # Works for plain dicts as well as for case-insensitive mappings such as Starlette's Headers.
    return {name.lower(): value for name, value in headers.items()}


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def _first_hop(value: str) -> str:
    return value.split(",", 1)[0].strip()


def _matches_any(candidate: str, expected: Sequence[str]) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and an attacker chooses the header.
    given = candidate.encode()
    return any(hmac.compare_digest(given, value.encode()) for value in expected)


def _active(secrets: Sequence[str]) -> Sequence[str]:
    if not secrets:
        raise SignatureError("no active secret configured")
    return secrets


def _check_age(sent_at: datetime, now: datetime, tolerance: timedelta) -> None:
    require_aware(now, "now")
    if now - sent_at > tolerance:
        raise SignatureError(f"stale timestamp: sent {now - sent_at} ago, over {tolerance}")
    if sent_at - now > tolerance:
        raise SignatureError(f"timestamp {sent_at - now} in the future, over {tolerance}")


def request_uri(
    *,
    scheme: str,
    host: str,
    raw_path: str,
    query: str = "",
    headers: Mapping[str, str],
    trust_forwarded: bool,
) -> str:
    """Rebuild the URL the vendor called; behind a trusted proxy take X-Forwarded-Proto/Host."""
    if trust_forwarded:
        lowered = _lower_keys(headers)
        scheme = _first_hop(lowered.get("x-forwarded-proto", "")) or scheme
        host = _first_hop(lowered.get("x-forwarded-host", "")) or host
    return f"{scheme}://{host}{raw_path}" + (f"?{query}" if query else "")


def hubspot_v3_uri(uri: str) -> str:
    """Decode the URI the way HubSpot does before signing v3 (only the listed escapes)."""
    return _HUBSPOT_DECODED.sub(lambda match: chr(int(match.group(1), 16)), uri)


def sign_hubspot_v3(
    *, body: bytes, method: str, uri: str, secret: str, timestamp_ms: int | str
) -> str:
    """Return the X-HubSpot-Signature-v3 value HubSpot would send."""
    message = f"{method.upper()}{hubspot_v3_uri(uri)}".encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _hubspot_legacy(
    scheme: HubSpotScheme, *, body: bytes, method: str, uri: str, secret: str
) -> str:
    prefix = secret if scheme is HubSpotScheme.V1 else f"{secret}{method.upper()}{uri}"
    return hashlib.sha256(prefix.encode() + body).hexdigest()


def verify_hubspot(
    *,
    body: bytes,
    headers: Mapping[str, str],
    method: str,
    uri: str,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    allow_legacy: bool = True,
) -> HubSpotScheme:
    """Verify a HubSpot request (v3 when its header is present, else v2/v1); return the scheme."""
    lowered = _lower_keys(headers)
    active = _active(secrets)
    if "x-hubspot-signature-v3" in lowered:
        _verify_hubspot_v3(
            body, lowered, method=method, uri=uri, secrets=active, now=now, tolerance=tolerance
        )
        return HubSpotScheme.V3
    if "x-hubspot-signature" not in lowered:
        raise SignatureError("missing X-HubSpot-Signature-v3 or X-HubSpot-Signature header")
    version = lowered.get("x-hubspot-signature-version", "v1").strip().lower() or "v1"
    if version not in (HubSpotScheme.V1, HubSpotScheme.V2):
        raise SignatureError(f"unsupported X-HubSpot-Signature-Version {version!r}")
    scheme = HubSpotScheme(version)
    if not allow_legacy:
        raise SignatureError(f"HubSpot signature {scheme} refused: only v3 is accepted")
    signature = _required(lowered, "X-HubSpot-Signature").lower()
    expected = [
        _hubspot_legacy(scheme, body=body, method=method, uri=uri, secret=secret)
        for secret in active
    ]
    if not _matches_any(signature, expected):
        raise SignatureError(f"HubSpot {scheme} signature mismatch")
    return scheme


def _verify_hubspot_v3(
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str,
    uri: str,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta,
) -> None:
    signature = _required(headers, "X-HubSpot-Signature-v3")
    raw_timestamp = _required(headers, "X-HubSpot-Request-Timestamp")
    if not raw_timestamp.isdigit():
        raise SignatureError(f"invalid X-HubSpot-Request-Timestamp {raw_timestamp!r}")
    _check_age(from_epoch(int(raw_timestamp), "ms"), now, tolerance)
    expected = [
        sign_hubspot_v3(
            body=body, method=method, uri=uri, secret=secret, timestamp_ms=raw_timestamp
        )
        for secret in secrets
    ]
    if not _matches_any(signature, expected):
        raise SignatureError("HubSpot v3 signature mismatch")


def sign_segment(*, body: bytes, secret: str) -> str:
    """Return the X-Signature value Segment's webhook destination would send."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify_segment(*, body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Verify Segment's X-Signature (hex HMAC-SHA1 of the body)."""
    signature = _required(_lower_keys(headers), "X-Signature").lower()
    expected = [sign_segment(body=body, secret=secret) for secret in _active(secrets)]
    if not _matches_any(signature, expected):
        raise SignatureError("Segment signature mismatch")


def sign_outreach(*, body: bytes, secret: str) -> str:
    """Return the Outreach-Webhook-Signature value: hex HMAC-SHA256 of the body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_outreach(*, body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Verify Outreach's Outreach-Webhook-Signature (hex HMAC-SHA256 of the raw body).

    Outreach signs no timestamp: a replayed delivery is absorbed by the dedupe keys.
    """
    signature = _required(_lower_keys(headers), "Outreach-Webhook-Signature").lower()
    expected = [sign_outreach(body=body, secret=secret) for secret in _active(secrets)]
    if not _matches_any(signature, expected):
        raise SignatureError("Outreach signature mismatch")


def _standard_webhook_key(secret: str) -> bytes:
    if not secret.startswith(_WHSEC_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret.removeprefix(_WHSEC_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a whsec_ secret must be base64 after its prefix") from exc


def sign_standard_webhook(*, body: bytes, msg_id: str, timestamp: int, secret: str) -> str:
    """Return the `v1,<base64>` signature of the Standard Webhooks spec."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_webhook_key(secret), message, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def verify_standard_webhook(
    *,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> str:
    """Verify a Standard Webhooks request (any v1 signature, any secret); return its webhook-id."""
    lowered = _lower_keys(headers)
    msg_id = _required(lowered, "webhook-id")
    raw_timestamp = _required(lowered, "webhook-timestamp")
    header = _required(lowered, "webhook-signature")
    if not raw_timestamp.isdigit():
        raise SignatureError(f"invalid webhook-timestamp {raw_timestamp!r}")
    _check_age(from_epoch(int(raw_timestamp), "s"), now, tolerance)
    given = [part for part in header.split() if part.startswith("v1,")]
    if not given:
        raise SignatureError("webhook-signature holds no v1 signature")
    expected = [
        sign_standard_webhook(body=body, msg_id=msg_id, timestamp=int(raw_timestamp), secret=secret)
        for secret in _active(secrets)
    ]
    if not any(_matches_any(signature, expected) for signature in given):
        raise SignatureError("webhook-signature mismatch")
    return msg_id
