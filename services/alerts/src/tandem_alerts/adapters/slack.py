"""Slack transport: chat.postMessage through slack_sdk's AsyncWebClient."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from opentelemetry import trace
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tandem_alerts.adapters.senders import SendResult
from tandem_alerts.domain.delivery_policy import SlackFailure
from tandem_alerts.domain.slack_blocks import SlackMessage
from tandem_shared.telemetry import tracer

_tracer = tracer(__name__)


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

    async def post(self, destination: str, message: SlackMessage) -> SendResult:
        """Post `message` to `destination` and report how it went, in a client span."""
        with _tracer.start_as_current_span(
            "slack chat.postMessage",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "url.full": self._url},
        ) as span:
            result = await self._post(destination, message)
            if result.failure is not None:
                span.set_status(trace.StatusCode.ERROR, repr(result.failure))
            return result

    async def _post(self, destination: str, message: SlackMessage) -> SendResult:
        self._keep_alive()
        try:
            response = await self._client.chat_postMessage(
                channel=destination, **message.as_kwargs()
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
