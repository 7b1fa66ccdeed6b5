"""API keys: generation, peppered hashing for storage and constant-time verification.

A key reads `tdm_<key id>_<secret>`. The fixed `tdm_` prefix lets secret scanners (and people)
recognise a leaked Tandem key; the key id (12 hex characters) is stored in clear and finds the
row in one indexed lookup; the secret (256 random bits) is never stored. The database keeps
HMAC-SHA256(pepper, whole key): the key has so much entropy that a slow password hash would
add nothing, and the pepper, held outside the database, makes a stolen table useless alone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from tandem_api_gateway.domain.errors import InvalidApiKey

PREFIX = "tdm"
MIN_PEPPER_BYTES = 32
_KEY_ID_BYTES = 6
_SECRET_BYTES = 32
# token_urlsafe of 32 bytes is 43 characters from the URL-safe alphabet (which includes "_").
_KEY_PATTERN = re.compile(rf"^{PREFIX}_(?P<key_id>[0-9a-f]{{12}})_(?P<secret>[A-Za-z0-9_-]{{43}})$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly generated key: show `plaintext` once, store `key_id` and `key_hash`."""

    key_id: str
    plaintext: str
    key_hash: str

    @property
    def display_hint(self) -> str:
        """Return a safe way to show the key in listings (prefix and id, no secret)."""
        return f"{PREFIX}_{self.key_id}_…"


def generate_api_key(*, pepper: bytes) -> IssuedKey:
    """Generate a new API key and the hash to store for it."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    plaintext = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return IssuedKey(
        key_id=key_id, plaintext=plaintext, key_hash=hash_api_key(plaintext, pepper=pepper)
    )


def key_id_of(presented: str) -> str:
    """Return the key id of a presented key, to find its row; raise InvalidApiKey if malformed."""
    match = _KEY_PATTERN.fullmatch(presented.strip())
    if match is None:
        raise InvalidApiKey("malformed API key")
    return match["key_id"]


def hash_api_key(key: str, *, pepper: bytes) -> str:
    """Return the hex HMAC-SHA256 of the whole key under the server pepper."""
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"the API key pepper must be at least {MIN_PEPPER_BYTES} bytes")
    return hmac.new(pepper, key.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_api_key(presented: str, *, stored_hash: str, pepper: bytes) -> bool:
    """Return True when the presented key matches the stored hash (constant-time comparison)."""
    candidate = hash_api_key(presented.strip(), pepper=pepper)
    return hmac.compare_digest(candidate.encode(), stored_hash.encode())
