"""HubSpot's CRM API, as the lookup worker reads it: batch reads of objects and associations.

Endpoints (developers.hubspot.com): `POST /crm/v3/objects/{type}/batch/read` (up to 100 ids; ids
not found come back under `errors`, status 207) and `POST /crm/v4/associations/{from}/{to}/batch/
read` (pages per id via `paging.next.after`). Rate limits are per account and shared with every
app: a 429 says when to come back (Retry-After, else the window of
`X-HubSpot-RateLimit-Interval-Milliseconds`), and a response whose
`X-HubSpot-RateLimit-Remaining` is 0 makes the next request wait for the window to pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from tandem_ingest.adapters.api_errors import ApiError, json_answer
from tandem_ingest.domain.hubspot_records import OBJECT_NAMES

BATCH_LIMIT = 100  # ids per batch read: HubSpot's documented maximum


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Return the seconds HubSpot asks to wait: Retry-After, else its rate-limit window."""
    for name, scale in (("retry-after", 1.0), ("x-hubspot-ratelimit-interval-milliseconds", 1e-3)):
        raw = headers.get(name, "").strip()
        try:
            seconds = float(raw) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def _chunks(ids: Iterable[str], size: int) -> list[list[str]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class HubSpotApi:
    """A private app's client of the CRM API (httpx), pacing itself on HubSpot's headers."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._monotonic = monotonic
        self._sleep = sleep
        self._quiet_until = 0.0

    @classmethod
    def create(cls, *, base_url: str, token: str, timeout: float) -> HubSpotApi:
        """Return a client of the API at `base_url` authenticated by a private app's token."""
        client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )
        return cls(client)

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def read(
        self, type_id: str, ids: Iterable[str], properties: Iterable[str]
    ) -> dict[str, dict[str, str | None]]:
        """Return the properties of the objects found, by id; missing ids are left out."""
        path = f"/crm/v3/objects/{OBJECT_NAMES[type_id]}/batch/read"
        found: dict[str, dict[str, str | None]] = {}
        for chunk in _chunks(ids, BATCH_LIMIT):
            body = {"properties": sorted(set(properties)), "inputs": [{"id": i} for i in chunk]}
            answer = await self._post(path, body)
            for result in answer.get("results") or []:
                found[str(result["id"])] = dict(result.get("properties") or {})
        return found

    async def associations(
        self, from_type: str, to_type: str, ids: Iterable[str]
    ) -> dict[str, list[str]]:
        """Return the ids of the `to_type` objects associated with each object, in order."""
        path = f"/crm/v4/associations/{OBJECT_NAMES[from_type]}/{OBJECT_NAMES[to_type]}/batch/read"
        found: dict[str, list[str]] = {}
        pending: list[dict[str, str]] = [{"id": i} for i in sorted(set(ids))]
        while pending:
            batch, pending = pending[:BATCH_LIMIT], pending[BATCH_LIMIT:]
            answer = await self._post(path, {"inputs": batch})
            for result in answer.get("results") or []:
                from_id = str(result["from"]["id"])
                found.setdefault(from_id, []).extend(str(t["toObjectId"]) for t in result["to"])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    pending.append({"id": from_id, "after": str(after)})
        return found

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        wait = self._quiet_until - self._monotonic()
        if wait > 0:
            await self._sleep(wait)
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ApiError(f"POST {path}: {exc!r}") from exc
        headers = response.headers
        if headers.get("x-hubspot-ratelimit-remaining", "").strip() == "0":
            self._quiet_until = self._monotonic() + (rate_limit_wait(headers) or 1.0)
        return json_answer(response, f"POST {path}", retry_after=rate_limit_wait(headers))
