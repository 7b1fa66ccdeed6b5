from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tandem_ingest.domain.errors import SignatureError
from tandem_ingest.domain.signatures import (
    HubSpotScheme,
    hubspot_v3_uri,
    request_uri,
    sign_hubspot_v3,
    sign_segment,
    sign_standard_webhook,
    verify_hubspot,
    verify_segment,
    verify_standard_webhook,
)

NOW = datetime(2025, 1, 6, 16, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://tandem.example.com/webhooks/hubspot?portal=33"
BODY = b'[{"eventId":1,"objectId":123}]'


def _v3_headers(signature: str, timestamp_ms: int = NOW_MS) -> dict[str, str]:
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(timestamp_ms)}


def _independent_v3(*, uri_as_signed: str, timestamp_ms: int, secret: str = SECRET) -> str:
    message = f"POST{uri_as_signed}".encode() + BODY + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


# ---- HubSpot v3 ---------------------------------------------------------------------------


def test_hubspot_v3_accepts_a_signature_computed_as_hubspot_documents() -> None:
    signature = _independent_v3(uri_as_signed=URI, timestamp_ms=NOW_MS)

    scheme = verify_hubspot(
        body=BODY, headers=_v3_headers(signature), method="POST", uri=URI, secrets=[SECRET], now=NOW
    )

    assert scheme is HubSpotScheme.V3


def test_hubspot_v3_decodes_only_the_listed_escapes_of_the_uri() -> None:
    uri = "https://h.example.com/hook%3Fa%2Fb?q=%40x%20y%26z%3Dw%2a%3b"
    signed_as = "https://h.example.com/hook?a/b?q=@x%20y%26z%3Dw*;"
    signature = _independent_v3(uri_as_signed=signed_as, timestamp_ms=NOW_MS)

    assert hubspot_v3_uri(uri) == signed_as
    verify_hubspot(
        body=BODY, headers=_v3_headers(signature), method="POST", uri=uri, secrets=[SECRET], now=NOW
    )


@pytest.mark.parametrize("escape", ["%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29"])
def test_hubspot_v3_decoded_escapes(escape: str) -> None:
    assert hubspot_v3_uri(f"/a{escape}b") == f"/a{chr(int(escape[1:], 16))}b"


@pytest.mark.parametrize("escape", ["%20", "%26", "%3D", "%23", "%25", "%2B"])
def test_hubspot_v3_kept_escapes(escape: str) -> None:
    assert hubspot_v3_uri(f"/a{escape}b") == f"/a{escape}b"


def test_hubspot_v3_accepts_any_active_secret_during_rotation() -> None:
    signature = _independent_v3(uri_as_signed=URI, timestamp_ms=NOW_MS, secret="new-secret")

    verify_hubspot(
        body=BODY,
        headers=_v3_headers(signature),
        method="POST",
        uri=URI,
        secrets=["old-secret", "new-secret"],
        now=NOW,
    )


def test_hubspot_v3_header_names_are_case_insensitive() -> None:
    signature = sign_hubspot_v3(
        body=BODY, method="POST", uri=URI, secret=SECRET, timestamp_ms=NOW_MS
    )
    headers = {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": str(NOW_MS)}

    verify_hubspot(body=BODY, headers=headers, method="post", uri=URI, secrets=[SECRET], now=NOW)


def test_hubspot_v3_rejects_a_tampered_body() -> None:
    signature = sign_hubspot_v3(
        body=BODY, method="POST", uri=URI, secret=SECRET, timestamp_ms=NOW_MS
    )

    with pytest.raises(SignatureError, match="mismatch"):
        verify_hubspot(
            body=BODY + b" ",
            headers=_v3_headers(signature),
            method="POST",
            uri=URI,
            secrets=[SECRET],
            now=NOW,
        )


@pytest.mark.parametrize("age", [timedelta(minutes=5, seconds=1), timedelta(minutes=-6)])
def test_hubspot_v3_rejects_a_timestamp_outside_five_minutes(age: timedelta) -> None:
    sent_ms = int((NOW - age).timestamp() * 1000)
    signature = sign_hubspot_v3(
        body=BODY, method="POST", uri=URI, secret=SECRET, timestamp_ms=sent_ms
    )

    with pytest.raises(SignatureError, match="timestamp"):
        verify_hubspot(
            body=BODY,
            headers=_v3_headers(signature, sent_ms),
            method="POST",
            uri=URI,
            secrets=[SECRET],
            now=NOW,
        )


def test_hubspot_v3_accepts_a_timestamp_just_inside_the_window() -> None:
    sent_ms = int((NOW - timedelta(minutes=4, seconds=59)).timestamp() * 1000)
    signature = sign_hubspot_v3(
        body=BODY, method="POST", uri=URI, secret=SECRET, timestamp_ms=sent_ms
    )

    verify_hubspot(
        body=BODY,
        headers=_v3_headers(signature, sent_ms),
        method="POST",
        uri=URI,
        secrets=[SECRET],
        now=NOW,
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-HubSpot-Signature-v3": "abc"}, "missing X-HubSpot-Request-Timestamp"),
        ({"X-HubSpot-Signature-v3": "abc", "X-HubSpot-Request-Timestamp": "soon"}, "invalid"),
        ({}, "missing X-HubSpot-Signature-v3 or X-HubSpot-Signature"),
    ],
)
def test_hubspot_rejects_incomplete_headers(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_hubspot(
            body=BODY, headers=headers, method="POST", uri=URI, secrets=[SECRET], now=NOW
        )


def test_hubspot_rejects_when_no_secret_is_configured() -> None:
    signature = sign_hubspot_v3(
        body=BODY, method="POST", uri=URI, secret=SECRET, timestamp_ms=NOW_MS
    )

    with pytest.raises(SignatureError, match="no active secret"):
        verify_hubspot(
            body=BODY, headers=_v3_headers(signature), method="POST", uri=URI, secrets=[], now=NOW
        )


def test_hubspot_prefers_v3_when_legacy_headers_are_also_present() -> None:
    headers = {
        **_v3_headers("forged"),
        "X-HubSpot-Signature": "ignored",
        "X-HubSpot-Signature-Version": "v1",
    }

    with pytest.raises(SignatureError, match="v3 signature mismatch"):
        verify_hubspot(
            body=BODY, headers=headers, method="POST", uri=URI, secrets=[SECRET], now=NOW
        )


def test_hubspot_v3_rejects_a_non_ascii_signature_without_crashing() -> None:
    with pytest.raises(SignatureError, match="mismatch"):
        verify_hubspot(
            body=BODY,
            headers=_v3_headers("sïgnature"),
            method="POST",
            uri=URI,
            secrets=[SECRET],
            now=NOW,
        )


# ---- HubSpot legacy -----------------------------------------------------------------------


def test_hubspot_v1_matches_the_documented_example(vendor_sample: Callable[[str], bytes]) -> None:
    body = vendor_sample("hubspot/webhook_v1_docs_example_body.json").strip()
    headers = {
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "X-HubSpot-Signature-Version": "v1",
    }

    scheme = verify_hubspot(
        body=body, headers=headers, method="POST", uri=URI, secrets=[SECRET], now=NOW
    )

    assert scheme is HubSpotScheme.V1


def test_hubspot_v2_matches_the_documented_example() -> None:
    headers = {
        "X-HubSpot-Signature": "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        "X-HubSpot-Signature-Version": "v2",
    }

    scheme = verify_hubspot(
        body=b'{"example_field":"example_value"}',
        headers=headers,
        method="POST",
        uri="https://www.example.com/webhook_uri",
        secrets=["other", SECRET],
        now=NOW,
    )

    assert scheme is HubSpotScheme.V2


def test_hubspot_legacy_signature_without_version_is_v1() -> None:
    signature = hashlib.sha256(SECRET.encode() + BODY).hexdigest().upper()

    scheme = verify_hubspot(
        body=BODY,
        headers={"X-HubSpot-Signature": signature},
        method="POST",
        uri=URI,
        secrets=[SECRET],
        now=NOW,
    )

    assert scheme is HubSpotScheme.V1


def test_hubspot_legacy_can_be_refused() -> None:
    signature = hashlib.sha256(SECRET.encode() + BODY).hexdigest()

    with pytest.raises(SignatureError, match="only v3"):
        verify_hubspot(
            body=BODY,
            headers={"X-HubSpot-Signature": signature},
            method="POST",
            uri=URI,
            secrets=[SECRET],
            now=NOW,
            allow_legacy=False,
        )


def test_hubspot_rejects_an_unknown_signature_version() -> None:
    headers = {"X-HubSpot-Signature": "00", "X-HubSpot-Signature-Version": "v9"}

    with pytest.raises(SignatureError, match="unsupported"):
        verify_hubspot(
            body=BODY, headers=headers, method="POST", uri=URI, secrets=[SECRET], now=NOW
        )


def test_hubspot_v1_rejects_a_wrong_secret() -> None:
    signature = hashlib.sha256(b"other" + BODY).hexdigest()

    with pytest.raises(SignatureError, match="v1 signature mismatch"):
        verify_hubspot(
            body=BODY,
            headers={"X-HubSpot-Signature": signature},
            method="POST",
            uri=URI,
            secrets=[SECRET],
            now=NOW,
        )


# ---- Segment ------------------------------------------------------------------------------


def test_segment_accepts_hex_hmac_sha1_of_the_body() -> None:
    signature = hmac.new(b"seg-secret", BODY, hashlib.sha1).hexdigest()

    verify_segment(body=BODY, headers={"x-signature": signature}, secrets=["seg-secret"])

    assert sign_segment(body=BODY, secret="seg-secret") == signature


def test_segment_rejects_a_mismatch_and_a_missing_header() -> None:
    with pytest.raises(SignatureError, match="mismatch"):
        verify_segment(body=BODY, headers={"X-Signature": "00" * 20}, secrets=["seg-secret"])
    with pytest.raises(SignatureError, match="missing X-Signature"):
        verify_segment(body=BODY, headers={}, secrets=["seg-secret"])


# ---- Standard Webhooks --------------------------------------------------------------------

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="  # the reference libraries' vector
SW_NOW = datetime.fromtimestamp(SW_TIMESTAMP, UTC)


def _sw_headers(signature: str, timestamp: int = SW_TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_standard_webhook_matches_the_reference_vector() -> None:
    msg_id = verify_standard_webhook(
        body=SW_BODY, headers=_sw_headers(SW_SIGNATURE), secrets=[SW_SECRET], now=SW_NOW
    )

    assert msg_id == SW_ID
    assert (
        sign_standard_webhook(body=SW_BODY, msg_id=SW_ID, timestamp=SW_TIMESTAMP, secret=SW_SECRET)
        == SW_SIGNATURE
    )


def test_standard_webhook_accepts_any_of_several_signatures() -> None:
    header = f"v1,bm90IGl0 v1a,c29tZXRoaW5n {SW_SIGNATURE}"

    verify_standard_webhook(
        body=SW_BODY, headers=_sw_headers(header), secrets=[SW_SECRET], now=SW_NOW
    )


def test_standard_webhook_plain_secret_is_used_as_utf8_bytes() -> None:
    expected = hmac.new(
        b"plain-secret", f"{SW_ID}.{SW_TIMESTAMP}.".encode() + SW_BODY, hashlib.sha256
    )
    signature = "v1," + base64.b64encode(expected.digest()).decode()

    verify_standard_webhook(
        body=SW_BODY,
        headers=_sw_headers(signature),
        secrets=[SW_SECRET, "plain-secret"],
        now=SW_NOW,
    )


def test_standard_webhook_rejects_a_stale_timestamp() -> None:
    with pytest.raises(SignatureError, match="stale"):
        verify_standard_webhook(
            body=SW_BODY,
            headers=_sw_headers(SW_SIGNATURE),
            secrets=[SW_SECRET],
            now=SW_NOW + timedelta(minutes=5, seconds=1),
        )


def test_standard_webhook_rejects_a_signature_for_another_id() -> None:
    headers = {**_sw_headers(SW_SIGNATURE), "webhook-id": "msg_other"}

    with pytest.raises(SignatureError, match="mismatch"):
        verify_standard_webhook(body=SW_BODY, headers=headers, secrets=[SW_SECRET], now=SW_NOW)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"webhook-timestamp": "1", "webhook-signature": "v1,x"}, "missing webhook-id"),
        ({"webhook-id": "m", "webhook-timestamp": "x", "webhook-signature": "v1,x"}, "invalid"),
        (
            {
                "webhook-id": "m",
                "webhook-timestamp": str(SW_TIMESTAMP),
                "webhook-signature": "v2,x",
            },
            "no v1",
        ),
    ],
)
def test_standard_webhook_rejects_malformed_headers(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_standard_webhook(body=SW_BODY, headers=headers, secrets=[SW_SECRET], now=SW_NOW)


def test_standard_webhook_refuses_a_whsec_secret_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        verify_standard_webhook(
            body=SW_BODY,
            headers=_sw_headers(SW_SIGNATURE),
            secrets=["whsec_not*base64"],
            now=SW_NOW,
        )


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_standard_webhook(
            body=SW_BODY,
            headers=_sw_headers(SW_SIGNATURE),
            secrets=[SW_SECRET],
            now=SW_NOW.replace(tzinfo=None),
        )


# ---- request URI --------------------------------------------------------------------------


def test_request_uri_uses_forwarded_headers_only_when_trusted() -> None:
    headers = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "hooks.tandem.io, internal"}
    common = {"scheme": "http", "host": "ingest:8080", "raw_path": "/hook%20x", "query": "a=1"}

    assert (
        request_uri(**common, headers=headers, trust_forwarded=True)
        == "https://hooks.tandem.io/hook%20x?a=1"
    )
    assert (
        request_uri(**common, headers=headers, trust_forwarded=False)
        == "http://ingest:8080/hook%20x?a=1"
    )


def test_request_uri_falls_back_when_forwarded_headers_are_absent() -> None:
    uri = request_uri(
        scheme="https", host="a.example", raw_path="/h", headers={}, trust_forwarded=True
    )

    assert uri == "https://a.example/h"
