"""Opaque cursors for keyset pagination, and bounded page sizes.

A cursor is base64url (no padding) of the JSON `{"l": listing, "v": [sort key values]}` of the
last row served; with a signing key, `.` and a truncated HMAC-SHA256 follow. The listing name
stops a cursor from /v1/handoffs being replayed on /v1/alerts. Decoding checks everything and
raises `InvalidCursor` (HTTP 400) with a clear message instead of letting garbage reach SQL.
Signing is optional because a forged cursor only moves within rows the caller may already read
(authorization filters the query, not the cursor); it turns tampering into a clear error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from tandem_api_gateway.domain.errors import InvalidCursor, InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_CURSOR_CHARS = 1024
_MAC_BYTES = 16

CursorValue = str | int | float | bool | datetime | None
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CursorSpec:
    """A listing's sort key: its name and the type of each value (None is always allowed)."""

    listing: str
    types: tuple[type[str] | type[int] | type[float] | type[bool] | type[datetime], ...]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_size(requested: int | None) -> int:
    """Return the page size to use: the default when absent, at most MAX_PAGE_SIZE."""
    if requested is None:
        return DEFAULT_PAGE_SIZE
    if requested < 1:
        raise InvalidInput(f"page size must be at least 1, got {requested}")
    return min(requested, MAX_PAGE_SIZE)


def encode_cursor(
    spec: CursorSpec, values: Sequence[CursorValue], *, key: bytes | None = None
) -> str:
    """Return the opaque cursor of one row's sort key values."""
    if len(values) != len(spec.types):
        raise ValueError(f"{spec.listing} cursors hold {len(spec.types)} values, got {len(values)}")
    for value, kind in zip(values, spec.types, strict=True):
        if not _fits(value, kind):
            raise ValueError(f"{value!r} is not of type {kind.__name__}")
    body = json.dumps(
        {"l": spec.listing, "v": [_to_json(v) for v in values]}, separators=(",", ":")
    ).encode()
    token = _b64encode(body)
    return f"{token}.{_b64encode(_mac(key, token))}" if key is not None else token


def decode_cursor(
    spec: CursorSpec, cursor: str, *, key: bytes | None = None
) -> tuple[CursorValue, ...]:
    """Return the sort key values of a cursor; raise InvalidCursor for anything else."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("cursor is too long")
    token = _verified_token(cursor, key)
    try:
        payload = json.loads(_b64decode(token))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(payload, dict) or set(payload) != {"l", "v"}:
        raise InvalidCursor("cursor is not valid")
    if payload["l"] != spec.listing:
        raise InvalidCursor(f"cursor belongs to another listing, not {spec.listing}")
    raw = payload["v"]
    if not isinstance(raw, list) or len(raw) != len(spec.types):
        raise InvalidCursor("cursor does not match this listing's sort key")
    return tuple(_from_json(v, kind) for v, kind in zip(raw, spec.types, strict=True))


def paginate(
    rows: Sequence[T],
    *,
    limit: int,
    spec: CursorSpec,
    sort_key: Callable[[T], Sequence[CursorValue]],
    key: bytes | None = None,
) -> Page[T]:
    """Cut rows fetched with LIMIT limit+1 into a page and the cursor of the next one."""
    items = list(rows[:limit])
    has_more = len(rows) > limit
    next_cursor = encode_cursor(spec, sort_key(items[-1]), key=key) if has_more and items else None
    return Page(items=items, next_cursor=next_cursor)


@dataclass(frozen=True, slots=True)
class Pager:
    """One listing request: where it resumes, how many rows, and how to cut the page."""

    spec: CursorSpec
    size: int
    after: tuple[CursorValue, ...] | None
    key: bytes | None = None

    @classmethod
    def start(
        cls, spec: CursorSpec, cursor: str | None, limit: int | None, *, key: bytes | None
    ) -> Pager:
        """Decode the request's cursor and bound its page size."""
        after = decode_cursor(spec, cursor, key=key) if cursor else None
        return cls(spec=spec, size=page_size(limit), after=after, key=key)

    @property
    def after_key(self) -> str | None:
        """Where a listing sorted by one text key resumes, or None from its start."""
        value = self.after[0] if self.after else None
        return None if value is None else str(value)

    def page(self, rows: Sequence[T], sort_key: Callable[[T], Sequence[CursorValue]]) -> Page[T]:
        """Cut rows fetched with LIMIT size+1 into this request's page."""
        return paginate(rows, limit=self.size, spec=self.spec, sort_key=sort_key, key=self.key)


def _verified_token(cursor: str, key: bytes | None) -> str:
    token, dot, mac = cursor.partition(".")
    if key is None:
        if dot:
            raise InvalidCursor("cursor is not valid")
        return token
    try:
        presented = _b64decode(mac)
    except ValueError as exc:
        raise InvalidCursor("cursor signature is not valid") from exc
    if not hmac.compare_digest(presented, _mac(key, token)):
        raise InvalidCursor("cursor signature is not valid: it was altered or is from elsewhere")
    return token


def _mac(key: bytes, token: str) -> bytes:
    return hmac.new(key, token.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        padded = text.encode("ascii") + b"=" * (-len(text) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("not base64url") from exc


def _fits(value: CursorValue, kind: type) -> bool:
    if value is None:
        return True
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, kind)


def _to_json(value: CursorValue) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _from_json(raw: Any, kind: type) -> CursorValue:
    value: CursorValue = raw
    if kind is datetime and isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise InvalidCursor("cursor holds an invalid timestamp") from exc
    if not isinstance(value, str | int | float | bool | datetime | None) or not _fits(value, kind):
        raise InvalidCursor(f"cursor value {raw!r} is not of type {kind.__name__}")
    if kind is float and isinstance(value, int):
        value = float(value)
    return value
