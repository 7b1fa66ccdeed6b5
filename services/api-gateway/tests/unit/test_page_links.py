"""A page's `next` link: the same path and filters, with the next page's cursor."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import URL

from tandem_api_gateway.api.schemas import page_out


def test_next_keeps_the_filters_and_replaces_the_cursor() -> None:
    url = URL("http://gateway/v1/handoffs?account_key=acme.com&limit=2&cursor=old")
    page = page_out([1, 2], "new", url=url)
    assert page.next_cursor == "new"
    assert page.next is not None
    parts = urlsplit(page.next)
    assert parts.path == "/v1/handoffs" and not parts.netloc
    assert parse_qs(parts.query) == {"account_key": ["acme.com"], "limit": ["2"], "cursor": ["new"]}


def test_the_last_page_has_no_next() -> None:
    page = page_out([1], None, url=URL("http://gateway/v1/alerts?kind=handoff"))
    assert (page.next_cursor, page.next) == (None, None)
