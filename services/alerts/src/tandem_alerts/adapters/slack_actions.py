"""Slack calls of handoff actions: chat.update, chat.postEphemeral and views.open (slack_sdk)."""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

METHODS = ("chat.update", "chat.postEphemeral", "views.open")


class SlackCallError(Exception):
    """A Slack call failed; `permanent` when trying again cannot help (an API error)."""

    def __init__(self, method: str, error: str, *, permanent: bool) -> None:
        super().__init__(f"{method}: {error}")
        self.permanent = permanent


class SlackActionsClient:
    """The Web API methods behind the handoff controls."""

    def __init__(self, *, token: str, base_url: str, timeout: float) -> None:
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=int(max(1, timeout)), retry_handlers=[]
        )

    async def call(self, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call one of METHODS; raise SlackCallError when Slack (or the network) says no."""
        if method not in METHODS:
            raise ValueError(f"not a handoff action method: {method}")
        try:
            response = await self._client.api_call(method, json=arguments)
        except SlackApiError as exc:
            data: Any = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            status = getattr(exc.response, "status_code", None)
            # 429 and 5xx pass; an API error (channel_not_found, invalid_blocks...) will not.
            transient = status == 429 or (isinstance(status, int) and status >= 500)
            raise SlackCallError(method, str(error or status), permanent=not transient) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SlackCallError(method, repr(exc), permanent=False) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}
