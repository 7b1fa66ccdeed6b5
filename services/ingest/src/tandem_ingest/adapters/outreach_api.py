"""Outreach's REST API (JSON:API, api.outreach.io/api/v2), as the lookup worker reads it.

`GET /api/v2/users?filter[id]=1,2&fields[user]=email`, `GET /api/v2/prospects?filter[id]=...
&include=account&fields[prospect]=emails,account&fields[account]=domain,websiteUrl` and
`GET /api/v2/accounts?filter[id]=...`: one request per 100 ids. Outreach limits each user's token
to 10,000 requests an hour; a 429 says when to come back (Retry-After, else X-RateLimit-Reset).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from tandem_ingest.adapters.api_errors import ApiError, json_answer

PAGE = 100
JSON_API = "application/vnd.api+json"


def reset_wait(headers: Mapping[str, str], *, now: float) -> float | None:
    """Return the seconds Outreach asks to wait: Retry-After, else until X-RateLimit-Reset."""
    for name in ("retry-after", "x-ratelimit-reset"):
        try:
            value = float(headers.get(name, "").strip())
        except ValueError:
            continue
        # A reset is an epoch second; Retry-After (and a small reset) a number of seconds.
        return max(0.0, value - now) if value > 1e9 else max(0.0, value)
    return None


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + PAGE] for i in range(0, len(ordered), PAGE)]


class OutreachApi:
    """A client of Outreach's API with an OAuth access token (httpx)."""

    def __init__(self, client: httpx.AsyncClient, *, wall: Callable[[], float] = time.time) -> None:
        self._client = client
        self._wall = wall

    @classmethod
    def create(cls, *, base_url: str, token: str, timeout: float) -> OutreachApi:
        """Return a client of the API at `base_url` (https://api.outreach.io)."""
        client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": JSON_API},
            timeout=timeout,
        )
        return cls(client)

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def user_emails(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Return each user's email, by id."""
        found: dict[str, str | None] = {}
        for chunk in _chunks(ids):
            answer = await self._get("/api/v2/users", chunk, {"fields[user]": "email"})
            for user in answer.get("data") or []:
                found[str(user["id"])] = (user.get("attributes") or {}).get("email")
        return found

    async def prospects(
        self, ids: Iterable[str]
    ) -> tuple[dict[str, tuple[str | None, str | None]], dict[str, str | None]]:
        """Return each prospect's (first email, account id), and the accounts' domains."""
        prospects: dict[str, tuple[str | None, str | None]] = {}
        domains: dict[str, str | None] = {}
        params = {
            "include": "account",
            "fields[prospect]": "emails,account",
            "fields[account]": "domain,websiteUrl",
        }
        for chunk in _chunks(ids):
            answer = await self._get("/api/v2/prospects", chunk, params)
            for prospect in answer.get("data") or []:
                emails = (prospect.get("attributes") or {}).get("emails") or []
                link = ((prospect.get("relationships") or {}).get("account") or {}).get("data")
                account = str(link["id"]) if isinstance(link, dict) else None
                prospects[str(prospect["id"])] = (emails[0] if emails else None, account)
            domains.update(_domains(answer.get("included") or []))
        return prospects, domains

    async def account_domains(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Return each account's domain (or website), by id."""
        domains: dict[str, str | None] = {}
        for chunk in _chunks(ids):
            params = {"fields[account]": "domain,websiteUrl"}
            answer = await self._get("/api/v2/accounts", chunk, params)
            domains.update(_domains(answer.get("data") or []))
        return domains

    async def _get(self, path: str, ids: list[str], params: dict[str, str]) -> dict[str, Any]:
        query = {"filter[id]": ",".join(ids), "page[size]": str(PAGE), **params}
        try:
            response = await self._client.get(path, params=query)
        except httpx.HTTPError as exc:
            raise ApiError(f"GET {path}: {exc!r}") from exc
        wait = reset_wait(response.headers, now=self._wall())
        return json_answer(response, f"GET {path}", retry_after=wait)


def _domains(resources: list[dict[str, Any]]) -> dict[str, str | None]:
    return {
        str(r["id"]): (r.get("attributes") or {}).get("domain")
        or (r.get("attributes") or {}).get("websiteUrl")
        for r in resources
        if r.get("type") == "account"
    }
