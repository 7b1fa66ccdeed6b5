"""API keys: format, peppered hash, verification of good, wrong and tampered keys."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tandem_api_gateway.domain.api_keys import (
    PREFIX,
    generate_api_key,
    hash_api_key,
    key_id_of,
    verify_api_key,
)
from tandem_api_gateway.domain.errors import InvalidApiKey

PEPPER = b"p" * 32
OTHER_PEPPER = b"q" * 32


def test_generated_key_has_prefix_id_and_secret() -> None:
    issued = generate_api_key(pepper=PEPPER)
    prefix, key_id, secret = issued.plaintext.split("_", 2)
    assert prefix == PREFIX
    assert key_id == issued.key_id and len(key_id) == 12
    assert len(secret) == 43
    assert key_id_of(issued.plaintext) == issued.key_id
    assert secret not in issued.display_hint and issued.key_id in issued.display_hint


def test_keys_are_unique() -> None:
    keys = {generate_api_key(pepper=PEPPER).plaintext for _ in range(50)}
    assert len(keys) == 50


def test_stored_hash_is_the_hmac_and_not_the_key() -> None:
    issued = generate_api_key(pepper=PEPPER)
    expected = hmac.new(PEPPER, issued.plaintext.encode(), hashlib.sha256).hexdigest()
    assert issued.key_hash == expected
    assert issued.plaintext not in issued.key_hash


def test_good_key_verifies() -> None:
    issued = generate_api_key(pepper=PEPPER)
    assert verify_api_key(issued.plaintext, stored_hash=issued.key_hash, pepper=PEPPER)
    assert verify_api_key(f" {issued.plaintext}\n", stored_hash=issued.key_hash, pepper=PEPPER)


def test_wrong_key_and_wrong_pepper_fail() -> None:
    issued = generate_api_key(pepper=PEPPER)
    other = generate_api_key(pepper=PEPPER)
    assert not verify_api_key(other.plaintext, stored_hash=issued.key_hash, pepper=PEPPER)
    assert not verify_api_key(issued.plaintext, stored_hash=issued.key_hash, pepper=OTHER_PEPPER)


def test_tampered_key_fails() -> None:
    issued = generate_api_key(pepper=PEPPER)
    last = issued.plaintext[-1]
    tampered = issued.plaintext[:-1] + ("A" if last != "A" else "B")
    assert key_id_of(tampered) == issued.key_id  # still well-formed, so it reaches the hash
    assert not verify_api_key(tampered, stored_hash=issued.key_hash, pepper=PEPPER)


def test_tampered_stored_hash_fails() -> None:
    issued = generate_api_key(pepper=PEPPER)
    assert not verify_api_key(issued.plaintext, stored_hash="0" * 64, pepper=PEPPER)
    assert not verify_api_key(issued.plaintext, stored_hash="", pepper=PEPPER)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "Bearer tdm_0123456789ab_" + "a" * 43,
        "tdm_0123456789ab_" + "a" * 42,
        "tdm_0123456789AB_" + "a" * 43,
        "xyz_0123456789ab_" + "a" * 43,
        "tdm_0123456789ab_" + "a" * 42 + "!",
    ],
)
def test_malformed_keys_are_refused_before_any_lookup(presented: str) -> None:
    with pytest.raises(InvalidApiKey, match="malformed"):
        key_id_of(presented)


def test_a_short_pepper_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        hash_api_key("tdm_x", pepper=b"short")
