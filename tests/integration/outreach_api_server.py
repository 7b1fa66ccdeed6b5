"""A local HTTP server that speaks the part of Outreach's REST API (JSON:API) ingest reads.

`GET /api/v2/users`, `/api/v2/prospects` (with `include=account`) and `/api/v2/accounts`,
filtered by `filter[id]=1,2,3`, answering `{"data": [...], "included": [...], "meta": {...}}`
with `application/vnd.api+json`; 401 with a JSON:API `errors` array for a bad token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from slack_server import serve_local
from tandem_shared.local.embedded import free_port

JSON_API = "application/vnd.api+json"


@dataclass
class FakeOutreach:
    """Outreach's API on 127.0.0.1 over users, prospects and accounts a test puts in."""

    token: str = "outreach-test-access-token"
    port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)  # id -> email
    prospects: dict[str, tuple[list[str], str | None]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # id -> domain
    requests: list[tuple[str, list[str]]] = field(default_factory=list)  # (path, ids asked)
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """The base URL to configure (TANDEM_OUTREACH__BASE_URL)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start serving."""
        self._runner = await serve_local(
            self.port,
            [
                web.get("/api/v2/users", self._users),
                web.get("/api/v2/prospects", self._prospects),
                web.get("/api/v2/accounts", self._accounts),
            ],
        )

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _ids(self, request: web.Request) -> list[str] | web.Response:
        ids = [i for i in request.query.get("filter[id]", "").split(",") if i]
        self.requests.append((request.path, ids))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            error = {"id": "unauthorizedRequest", "title": "Unauthorized Request", "detail": "x"}
            return web.json_response({"errors": [error]}, status=401, content_type=JSON_API)
        return ids

    async def _users(self, request: web.Request) -> web.Response:
        ids = self._ids(request)
        if isinstance(ids, web.Response):
            return ids
        data = [_resource("user", i, {"email": self.users[i]}) for i in ids if i in self.users]
        return _document(data)

    async def _prospects(self, request: web.Request) -> web.Response:
        ids = self._ids(request)
        if isinstance(ids, web.Response):
            return ids
        data, included = [], []
        for i in ids:
            if i not in self.prospects:
                continue
            emails, account = self.prospects[i]
            relation = {"data": {"type": "account", "id": int(account)} if account else None}
            data.append(_resource("prospect", i, {"emails": emails}, {"account": relation}))
            if account and "account" in request.query.get("include", ""):
                included.append(_resource("account", account, {"domain": self.accounts[account]}))
        return _document(data, included)

    async def _accounts(self, request: web.Request) -> web.Response:
        ids = self._ids(request)
        if isinstance(ids, web.Response):
            return ids
        data = [
            _resource("account", i, {"domain": self.accounts[i]}) for i in ids if i in self.accounts
        ]
        return _document(data)


def _resource(
    kind: str, ident: str, attributes: dict[str, Any], relationships: dict[str, Any] | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": kind, "id": int(ident), "attributes": attributes}
    if relationships:
        resource["relationships"] = relationships
    return resource


def _document(data: list[Any], included: list[Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"data": data, "meta": {"count": len(data)}}
    if included:
        body["included"] = included
    return web.json_response(body, content_type=JSON_API)
