"""Slack transport: chat.postMessage through slack_sdk's AsyncWebClient."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from opentelemetry import trace
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tandem_alerts.adapters.senders import SendResult
from tandem_alerts.domain.delivery_policy import SlackFailure
from tandem_alerts.domain.slack_blocks import SlackMessage
from tandem_shared.telemetry import tracer

_tracer = tracer(__name__)
log = structlog.get_logger(__name__)

# Message metadata naming the deliveries a message carries: a sender that finds a delivery it may
# have sent already (its sender died before recording it) looks for this before posting again.
METADATA_TYPE = "tandem_delivery"
_HISTORY_PAGES = 5  # of 200 messages: a conversation's traffic since the earlier send


class SlackSender:
    """Posts messages to a Slack channel or user (a user id opens the app's DM)."""

    def __init__(self, *, token: str, base_url: str, timeout: float) -> None:
        # No client-side retry handlers: retries, Retry-After and back-off are the delivery
        # policy's, recorded per attempt, not hidden inside the client.
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=int(max(1, timeout)), retry_handlers=[]
        )
        self._timeout = aiohttp.ClientTimeout(total=int(max(1, timeout)))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._url = base_url.rstrip("/") + "/chat.postMessage"

    def _keep_alive(self) -> None:
        """Post through one HTTP session per event loop, its connections kept alive.

        Without a session of its own, slack_sdk opens a session, a TCP connection and a TLS
        context per message and closes them after: most of a message's CPU.
        """
        loop = asyncio.get_running_loop()
        session = self._client.session
        if session is None or session.closed or self._loop is not loop:
            self._client.session = aiohttp.ClientSession(timeout=self._timeout)
            self._loop = loop

    async def aclose(self) -> None:
        """Close the kept-alive session (at shut-down; a later post opens a new one)."""
        session, self._client.session = self._client.session, None
        if session is not None and not session.closed:
            await session.close()

    async def post(
        self, destination: str, message: SlackMessage, *, deliveries: Collection[int] = ()
    ) -> SendResult:
        """Post `message` to `destination` and report how it went, in a client span.

        `deliveries` go in the message's metadata, for find_posted.
        """
        with _tracer.start_as_current_span(
            "slack chat.postMessage",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "url.full": self._url},
        ) as span:
            result = await self._post(destination, message, deliveries)
            if result.failure is not None:
                span.set_status(trace.StatusCode.ERROR, repr(result.failure))
            return result

    async def find_posted(
        self, destination: str, deliveries: Collection[int], *, since: datetime
    ) -> SendResult | None:
        """The message carrying any of `deliveries` posted to `destination` since `since`, as
        its send's result; None when Slack has none, or cannot say (then sending again is the
        only way not to lose it: the app may lack the history scopes)."""
        self._keep_alive()
        wanted = {str(d) for d in deliveries}
        try:
            channel = destination
            if destination[:1] in ("U", "W"):  # a user: the messages are in the app's DM
                opened = await self._client.conversations_open(users=destination)
                channel = str(opened["channel"]["id"])
            cursor = None
            for _ in range(_HISTORY_PAGES):
                page = await self._client.conversations_history(
                    channel=channel,
                    oldest=f"{since.timestamp():.6f}",
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for posted in page.get("messages") or []:
                    metadata = posted.get("metadata") or {}
                    carried = (metadata.get("event_payload") or {}).get("deliveries") or []
                    if metadata.get("event_type") == METADATA_TYPE and wanted & set(carried):
                        return SendResult(slack_ts=posted.get("ts"), slack_channel=channel)
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except (SlackApiError, TimeoutError, aiohttp.ClientError) as exc:
            log.warning(
                "could not look for a message that may be posted already; posting it",
                destination=destination,
                deliveries=sorted(wanted),
                error=repr(exc),
            )
        return None

    async def _post(
        self, destination: str, message: SlackMessage, deliveries: Collection[int]
    ) -> SendResult:
        self._keep_alive()
        metadata = None
        if deliveries:
            payload = {"deliveries": [str(d) for d in deliveries]}
            metadata = {"event_type": METADATA_TYPE, "event_payload": payload}
        try:
            response = await self._client.chat_postMessage(
                channel=destination, metadata=metadata, **message.as_kwargs()
            )
        except SlackApiError as exc:
            return SendResult(failure=_api_failure(exc))
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult(failure=SlackFailure(error=None, timeout=True, status=_status(exc)))
        ts, channel = response.get("ts"), response.get("channel")
        return SendResult(
            slack_ts=ts if isinstance(ts, str) else None,
            slack_channel=channel if isinstance(channel, str) else None,
        )


def _api_failure(exc: SlackApiError) -> SlackFailure:
    response: Any = exc.response
    # A non-JSON body surfaces the raw aiohttp response (status), a parsed one a SlackResponse.
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    headers = getattr(response, "headers", None) or {}
    return SlackFailure(
        error=error if isinstance(error, str) else None,
        status=status if isinstance(status, int) else None,
        retry_after=_retry_after(headers),
    )


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):  # slack_sdk keeps multi-valued headers as lists
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None
