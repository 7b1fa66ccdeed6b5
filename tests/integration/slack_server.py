"""A local HTTP server that speaks Slack's Web API for tests: chat.postMessage, chat.update,
chat.postEphemeral, views.open, auth.test, conversations.open and conversations.history.

Point slack_sdk at it with `AsyncWebClient(token=..., base_url=fake.base_url)`. Answers follow
docs.slack.dev: HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error": ...}`, HTTP 429 with
`Retry-After` when rate limited, and whatever status a test scripts for outages. Every request to
chat.postMessage is recorded, whatever the answer, so tests can count attempts and read content;
the other methods are recorded in `calls` with their arguments and Slack's answer (chat.update of
a message it never posted answers `message_not_found`, views.open without a trigger id
`invalid_arguments`, as the Web API does). conversations.open gives a user's DM a `D...` id, and
conversations.history lists the posted messages of a channel or DM, newest first, with their
metadata when asked for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tandem_shared.local.embedded import free_port


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: dict[str, Any] | None = None  # None: the ok answer for the message
    headers: dict[str, str] = field(default_factory=dict)
    raw: str | None = None  # a non-JSON body (what a proxy's 5xx page looks like)
    delay: float = 0.0  # seconds before answering (a client timeout, when longer than it)


def ok() -> Reply:
    """Answer like Slack when the message was posted."""
    return Reply()


def error(code: str) -> Reply:
    """Answer a method error, e.g. channel_not_found (HTTP 200, ok false)."""
    return Reply(body={"ok": False, "error": code})


def rate_limited(retry_after: int) -> Reply:
    """Answer HTTP 429 with Retry-After (seconds), as Slack does past its rate limit."""
    return Reply(
        status=429,
        body={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": str(retry_after)},
    )


def server_error(status: int = 503) -> Reply:
    """Answer an outage: a 5xx with an HTML body."""
    return Reply(status=status, raw="<html><body>Service Unavailable</body></html>")


def slow(seconds: float) -> Reply:
    """Answer ok, but only after `seconds`."""
    return Reply(delay=seconds)


@dataclass(frozen=True)
class Received:
    """A chat.postMessage request as the server saw it, and what it answered."""

    channel: str
    text: str | None
    blocks: list[dict[str, Any]]
    at: float  # time.monotonic() on arrival
    status: int
    ok: bool
    ts: str | None
    metadata: dict[str, Any] | None = None

    @property
    def block_text(self) -> str:
        """Return every text of the blocks joined, for content assertions."""
        return json.dumps(self.blocks, ensure_ascii=False)


@dataclass(frozen=True)
class ApiCall:
    """A call of chat.update, chat.postEphemeral or views.open, and whether Slack took it."""

    method: str
    arguments: dict[str, Any]
    ok: bool
    error: str | None = None

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """Return the call's blocks (parsed when form-encoded)."""
        blocks = self.arguments.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


class FakeSlack:
    """Slack's Web API on 127.0.0.1, scriptable per channel."""

    def __init__(self, *, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.port = free_port()
        self.received: list[Received] = []
        self.calls: list[ApiCall] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self._seq = 0

    @property
    def base_url(self) -> str:
        """The base URL to give AsyncWebClient (ends with a slash, like Slack's)."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def messages(self) -> list[Received]:
        """Return the messages Slack accepted."""
        return [r for r in self.received if r.ok]

    def to(self, channel: str) -> list[Received]:
        """Return every request addressed to `channel`, accepted or not."""
        return [r for r in self.received if r.channel == channel]

    def script(self, channel: str, replies: list[Reply]) -> None:
        """Queue answers for the next requests to `channel`; after them, requests succeed."""
        self._scripts[channel].extend(replies)

    async def start(self) -> None:
        """Start serving."""
        self._runner = await serve_local(
            self.port,
            [
                web.post("/api/chat.postMessage", self._post_message),
                web.post("/api/auth.test", self._auth_test),
                web.post("/api/chat.update", self._update),
                web.post("/api/chat.postEphemeral", self._ephemeral),
                web.post("/api/views.open", self._open_view),
                web.post("/api/conversations.open", self._open_conversation),
                web.post("/api/conversations.history", self._history),
                web.get("/api/conversations.history", self._history),
            ],
        )

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _auth_test(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(
            {
                "ok": True,
                "url": "https://tandem-test.slack.com/",
                "team": "Tandem Test",
                "user": "tandem",
                "team_id": "T0TANDEM1",
                "user_id": "U0TANDEMB",
                "bot_id": "B0TANDEMB",
            }
        )

    async def _post_message(self, request: web.Request) -> web.Response:
        args = await _arguments(request)
        channel = str(args.get("channel", ""))
        if not self._authorized(request):
            return self._answer(args, channel, Reply(body={"ok": False, "error": "not_authed"}))
        if not channel:
            return self._answer(args, channel, error("channel_not_found"))
        if not args.get("text") and not args.get("blocks"):
            return self._answer(args, channel, error("no_text"))
        script = self._scripts.get(channel)
        reply = script.popleft() if script else ok()
        await asyncio.sleep(reply.delay)
        return self._answer(args, channel, reply)

    def _answer(self, args: dict[str, Any], channel: str, reply: Reply) -> web.Response:
        blocks = args.get("blocks") or []
        if isinstance(blocks, str):  # form-encoded bodies carry blocks as a JSON string
            blocks = json.loads(blocks)
        text = args.get("text")
        body = reply.body
        ts: str | None = None
        if body is None:
            ts = self._next_ts()
            body = {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {
                    "type": "message",
                    "subtype": "bot_message",
                    "bot_id": "B0TANDEMB",
                    "text": text or "",
                    "blocks": blocks,
                    "ts": ts,
                },
            }
        accepted = reply.status == 200 and body.get("ok") is True
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        self.received.append(
            Received(channel, text, blocks, time.monotonic(), reply.status, accepted, ts, metadata)
        )
        if reply.raw is not None:
            return web.Response(
                status=reply.status, text=reply.raw, content_type="text/html", headers=reply.headers
            )
        return web.json_response(body, status=reply.status, headers=reply.headers)

    def of(self, method: str) -> list[ApiCall]:
        """Return the calls of one method (chat.update, chat.postEphemeral, views.open)."""
        return [c for c in self.calls if c.method == method]

    async def _update(self, request: web.Request) -> web.Response:
        args = await _arguments(request)
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        posted = any(r.ok and r.channel == channel and r.ts == ts for r in self.received)
        if not self._authorized(request):
            return self._record_call("chat.update", args, "not_authed")
        if not posted:
            return self._record_call("chat.update", args, "message_not_found")
        body = {"ok": True, "channel": channel, "ts": ts, "text": args.get("text", "")}
        body["message"] = {"text": args.get("text", ""), "blocks": args.get("blocks") or []}
        return self._record_call("chat.update", args, None, body)

    async def _ephemeral(self, request: web.Request) -> web.Response:
        args = await _arguments(request)
        if not self._authorized(request):
            return self._record_call("chat.postEphemeral", args, "not_authed")
        if not args.get("channel") or not args.get("user"):
            return self._record_call("chat.postEphemeral", args, "invalid_arguments")
        return self._record_call(
            "chat.postEphemeral", args, None, {"ok": True, "message_ts": self._next_ts()}
        )

    async def _open_view(self, request: web.Request) -> web.Response:
        args = await _arguments(request)
        if not self._authorized(request):
            return self._record_call("views.open", args, "not_authed")
        view = args.get("view")
        if not args.get("trigger_id") or not view:
            return self._record_call("views.open", args, "invalid_arguments")
        self._seq += 1
        view = json.loads(view) if isinstance(view, str) else view
        body = {"ok": True, "view": {"id": f"V{self._seq:08d}", **view}}
        return self._record_call("views.open", args, None, body)

    async def _open_conversation(self, request: web.Request) -> web.Response:
        args = await _arguments(request)
        if not self._authorized(request):
            return self._record_call("conversations.open", args, "not_authed")
        user = str(args.get("users", ""))
        if not user.startswith(("U", "W")) or "," in user:
            return self._record_call("conversations.open", args, "user_not_found")
        body = {"ok": True, "channel": {"id": "D" + user[1:]}}
        return self._record_call("conversations.open", args, None, body)

    async def _history(self, request: web.Request) -> web.Response:
        args = await _arguments(request)
        if not self._authorized(request):
            return self._record_call("conversations.history", args, "not_authed")
        channel = str(args.get("channel", ""))
        # A DM's history holds what was posted to its user's id or to the DM itself.
        posted_to = {channel} | (
            {"U" + channel[1:], "W" + channel[1:]} if channel[:1] == "D" else set()
        )
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(args.get("limit") or 100)
        found = [r for r in reversed(self.received) if r.ok and r.channel in posted_to and r.ts]
        messages = [
            {"type": "message", "ts": r.ts, "text": r.text or ""}
            | ({"metadata": r.metadata} if with_metadata and r.metadata else {})
            for r in found
            if float(r.ts or 0) > oldest
        ][:limit]
        body = {"ok": True, "messages": messages, "has_more": False}
        return self._record_call("conversations.history", args, None, body)

    def _record_call(
        self,
        method: str,
        args: dict[str, Any],
        error: str | None,
        body: dict[str, Any] | None = None,
    ) -> web.Response:
        self.calls.append(ApiCall(method, args, error is None, error))
        return web.json_response(body if error is None else {"ok": False, "error": error})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def _next_ts(self) -> str:
        self._seq += 1
        return f"{int(time.time())}.{self._seq:06d}"


async def serve_local(port: int, routes: list[web.RouteDef]) -> web.AppRunner:
    """Serve `routes` on 127.0.0.1:`port`; the runner's cleanup() stops it."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _arguments(request: web.Request) -> dict[str, Any]:
    # Like Slack, arguments may come in the query string too (slack_sdk sends some methods' so).
    query: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        data = await request.json()
        return query | data if isinstance(data, dict) else query
    form = await request.post()
    return query | {k: v for k, v in form.items() if isinstance(v, str)}
