"""A local HTTP server that speaks HubSpot's CRM API batch reads, for tests.

`POST /crm/v3/objects/{objectType}/batch/read` and `POST /crm/v4/associations/{from}/{to}/
batch/read`, as developers.hubspot.com documents them: a private app's bearer token, at most 100
inputs, 200 with `results`, or 207 with `errors` (category OBJECT_NOT_FOUND / NO_ASSOCIATIONS_FOUND)
for the ids it does not have, 401 for a bad token, the X-HubSpot-RateLimit-* headers on every
answer, and whatever a test scripts (429 with Retry-After, a 503 outage) for the next requests.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from slack_server import serve_local
from tandem_shared.local.embedded import free_port

BATCH_LIMIT = 100
# Object type ids as the API's paths also accept them.
TYPE_NAMES = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-48": "calls",
    "0-49": "emails",
    "0-47": "meetings",
    "0-46": "notes",
    "0-27": "tasks",
}


@dataclass(frozen=True)
class Reply:
    """A scripted answer to the next request, whatever it reads."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def rate_limited(retry_after: int) -> Reply:
    """Answer 429 as HubSpot does past the ten-second rolling limit."""
    return Reply(
        429,
        {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        {"Retry-After": str(retry_after), "X-HubSpot-RateLimit-Remaining": "0"},
    )


def unavailable() -> Reply:
    """Answer an outage."""
    return Reply(503, {"status": "error", "message": "Service Unavailable"})


@dataclass(frozen=True)
class Request:
    """A request as the server saw it, and the status it answered."""

    path: str
    body: dict[str, Any]
    status: int


def _name(type_ref: str) -> str:
    return TYPE_NAMES.get(type_ref, type_ref)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeHubSpotCrm:
    """The CRM API on 127.0.0.1 over records and associations a test puts in."""

    def __init__(self, *, token: str = "pat-na1-test-token", page_size: int = 500) -> None:
        self.token = token
        self.page_size = page_size  # associations per id and page (`paging.next.after`)
        self.port = free_port()
        self.requests: list[Request] = []
        self._records: dict[tuple[str, str], dict[str, str | None]] = {}
        self._associations: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._script: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """The base URL to configure (TANDEM_HUBSPOT__BASE_URL)."""
        return f"http://127.0.0.1:{self.port}"

    def add(self, object_type: str, object_id: str, **properties: str | None) -> None:
        """Create or replace a record (`object_type` as the API names it: calls, contacts...)."""
        self._records[(object_type, object_id)] = dict(properties)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Associate two records, both ways, as HubSpot does."""
        self._associations[(from_type, from_id, to_type)].append(to_id)
        self._associations[(to_type, to_id, from_type)].append(from_id)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these; after them, requests are served."""
        self._script.extend(replies)

    async def start(self) -> None:
        """Start serving."""
        self._runner = await serve_local(
            self.port,
            [
                web.post("/crm/v3/objects/{object_type}/batch/read", self._read),
                web.post("/crm/v4/associations/{from_type}/{to_type}/batch/read", self._related),
            ],
        )

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _read(self, request: web.Request) -> web.Response:
        body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        object_type = _name(request.match_info["object_type"])
        wanted = body.get("properties") or []
        results, missing = [], []
        for item in body["inputs"]:
            record = self._records.get((object_type, str(item["id"])))
            if record is None:
                missing.append(str(item["id"]))
                continue
            properties = {"hs_object_id": str(item["id"])}
            properties.update({name: record.get(name) for name in wanted})
            results.append(
                {
                    "id": str(item["id"]),
                    "properties": properties,
                    "createdAt": _now(),
                    "updatedAt": _now(),
                    "archived": False,
                }
            )
        errors = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {object_type} objects, they may be deleted or "
                "not exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return self._batch(request.path, body, results, errors if missing else [])

    async def _related(self, request: web.Request) -> web.Response:
        body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        from_type = _name(request.match_info["from_type"])
        to_type = _name(request.match_info["to_type"])
        results, errors = [], []
        for item in body["inputs"]:
            from_id = str(item["id"])
            related = self._associations.get((from_type, from_id, to_type))
            if not related:
                errors.append(
                    {
                        "status": "error",
                        "category": "NO_ASSOCIATIONS_FOUND",
                        "message": f"No {to_type} is associated with {from_type} {from_id}.",
                        "context": {"fromObjectId": [from_id]},
                    }
                )
                continue
            start = int(item.get("after") or 0)
            page = related[start : start + self.page_size]
            to = [
                {
                    "toObjectId": int(to_id),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}
                    ],
                }
                for to_id in page
            ]
            result: dict[str, Any] = {"from": {"id": from_id}, "to": to}
            if start + self.page_size < len(related):
                after = str(start + self.page_size)
                result["paging"] = {"next": {"after": after, "link": None}}
            results.append(result)
        return self._batch(request.path, body, results, errors)

    async def _admit(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.json()
        path = request.path
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            answer = Reply(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "category": "INVALID_AUTHENTICATION",
                },
            )
            return body, self._reply(path, body, answer)
        if self._script:
            return body, self._reply(path, body, self._script.popleft())
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs or len(inputs) > BATCH_LIMIT:
            message = f"inputs must hold 1 to {BATCH_LIMIT} objects"
            answer = Reply(
                400, {"status": "error", "category": "VALIDATION_ERROR", "message": message}
            )
            return body, self._reply(path, body, answer)
        return body, None

    def _batch(
        self, path: str, request: dict[str, Any], results: list[Any], errors: list[Any]
    ) -> web.Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": _now(),
            "completedAt": _now(),
        }
        if errors:
            body.update(errors=errors, numErrors=len(errors))
        return self._reply(path, request, Reply(207 if errors else 200, body))

    def _reply(self, path: str, body: dict[str, Any], reply: Reply) -> web.Response:
        self.requests.append(Request(path, body, reply.status))
        headers = {
            "X-HubSpot-RateLimit-Daily": "500000",
            "X-HubSpot-RateLimit-Daily-Remaining": "499000",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": "150",
            **reply.headers,
        }
        return web.json_response(reply.body, status=reply.status, headers=headers)
