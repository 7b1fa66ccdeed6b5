"""Opaque keyset cursors: round trips, garbage and tampering, bounded page sizes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from tandem_api_gateway.domain.cursor import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CursorSpec,
    Pager,
    decode_cursor,
    encode_cursor,
    page_size,
    paginate,
)
from tandem_api_gateway.domain.errors import InvalidCursor, InvalidInput

HANDOFFS = CursorSpec(listing="handoffs", types=(datetime, str))
ALERTS = CursorSpec(listing="alerts", types=(datetime, str))
MIXED = CursorSpec(listing="mixed", types=(int, float, bool, str))
AT = datetime(2025, 3, 3, 9, 30, 15, 123456, tzinfo=UTC)
KEY = b"k" * 32


def forge(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("key", [None, KEY])
def test_round_trip(key: bytes | None) -> None:
    cursor = encode_cursor(HANDOFFS, (AT, "h-42"), key=key)
    assert decode_cursor(HANDOFFS, cursor, key=key) == (AT, "h-42")
    assert "=" not in cursor and "h-42" not in cursor


def test_round_trip_of_scalars_and_nulls() -> None:
    values = (7, 2.5, True, None)
    assert decode_cursor(MIXED, encode_cursor(MIXED, values)) == values
    assert decode_cursor(MIXED, encode_cursor(MIXED, (7, 3, False, "x"))) == (7, 3.0, False, "x")


def test_encode_refuses_values_that_do_not_fit_the_spec() -> None:
    with pytest.raises(ValueError, match="hold 2 values"):
        encode_cursor(HANDOFFS, (AT,))
    with pytest.raises(ValueError, match="is not of type datetime"):
        encode_cursor(HANDOFFS, (AT.replace(tzinfo=None), "h"))
    with pytest.raises(ValueError, match="is not of type int"):
        encode_cursor(MIXED, (True, 1.0, True, "x"))


def test_cursor_of_another_listing_is_refused() -> None:
    with pytest.raises(InvalidCursor, match="another listing"):
        decode_cursor(ALERTS, encode_cursor(HANDOFFS, (AT, "h")))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forge([1, 2]),
        forge({"l": "handoffs"}),
        forge({"l": "handoffs", "v": [AT.isoformat(), "h"], "x": 1}),
        forge({"l": "handoffs", "v": [AT.isoformat()]}),
        forge({"l": "handoffs", "v": "h"}),
        forge({"l": "handoffs", "v": ["yesterday", "h"]}),
        forge({"l": "handoffs", "v": [AT.isoformat(), 42]}),
        forge({"l": "handoffs", "v": ["2025-03-03T09:30:00", "h"]}),  # naive timestamp
        forge({"l": "handoffs", "v": [AT.isoformat(), {"$gt": ""}]}),
    ],
)
def test_garbage_is_a_clear_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="cursor"):
        decode_cursor(HANDOFFS, cursor)


def test_oversized_cursor_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidCursor, match="too long"):
        decode_cursor(HANDOFFS, "a" * 2000)


def test_bools_are_not_ints_when_decoding() -> None:
    with pytest.raises(InvalidCursor, match="is not of type int"):
        decode_cursor(MIXED, forge({"l": "mixed", "v": [True, 1.0, True, "x"]}))


def test_a_signed_cursor_detects_tampering() -> None:
    cursor = encode_cursor(HANDOFFS, (AT, "h-42"), key=KEY)
    token, _, mac = cursor.partition(".")
    altered = forge({"l": "handoffs", "v": [AT.isoformat(), "h-43"]})
    with pytest.raises(InvalidCursor, match="altered"):
        decode_cursor(HANDOFFS, f"{altered}.{mac}", key=KEY)
    with pytest.raises(InvalidCursor, match="signature"):
        decode_cursor(HANDOFFS, token, key=KEY)  # signature stripped
    with pytest.raises(InvalidCursor, match="altered"):
        decode_cursor(HANDOFFS, cursor, key=b"o" * 32)  # signed elsewhere
    with pytest.raises(InvalidCursor, match="signature"):
        decode_cursor(HANDOFFS, f"{token}.!!", key=KEY)


def test_a_signed_cursor_is_refused_where_cursors_are_unsigned() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(HANDOFFS, encode_cursor(HANDOFFS, (AT, "h"), key=KEY))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, DEFAULT_PAGE_SIZE), (1, 1), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (10_000, MAX_PAGE_SIZE)],
)
def test_page_size_is_bounded(requested: int | None, expected: int) -> None:
    assert page_size(requested) == expected


@pytest.mark.parametrize("requested", [0, -5])
def test_page_size_below_one_is_refused(requested: int) -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        page_size(requested)


def test_paginate_walks_every_row_once() -> None:
    rows = [(AT + timedelta(minutes=i // 2), f"h{i}") for i in range(7)]  # ties on time
    seen: list[tuple[datetime, str]] = []
    cursor: str | None = None
    while True:
        after = decode_cursor(HANDOFFS, cursor) if cursor else None
        # What the shell's "WHERE (at, id) > (:at, :id) ORDER BY at, id LIMIT n+1" returns.
        remaining = [r for r in rows if after is None or r > after]  # type: ignore[operator]
        page = paginate(remaining[:4], limit=3, spec=HANDOFFS, sort_key=lambda r: r)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == rows


def test_last_page_has_no_next_cursor() -> None:
    assert (
        paginate([1, 2], limit=3, spec=MIXED, sort_key=lambda r: (r, 0.0, False, "")).next_cursor
        is None
    )
    assert paginate([], limit=3, spec=MIXED, sort_key=lambda r: (r, 0.0, False, "")).items == []


def test_a_pager_resumes_a_signed_listing_where_its_last_page_ended() -> None:
    accounts = CursorSpec(listing="accounts", types=(str,))
    rows = ["a.com", "b.com", "c.com"]
    first = Pager.start(accounts, None, 2, key=KEY)
    assert (first.after, first.after_key, first.size) == (None, None, 2)
    page = first.page(rows, lambda r: [r])
    assert page.items == ["a.com", "b.com"]
    resumed = Pager.start(accounts, page.next_cursor, None, key=KEY)
    assert (resumed.after_key, resumed.size) == ("b.com", DEFAULT_PAGE_SIZE)
    with pytest.raises(InvalidCursor):
        Pager.start(HANDOFFS, page.next_cursor, None, key=KEY)
