"""How a vendor API client says it could not answer: the lookup worker puts the lookups off."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The vendor's API did not answer usefully; `retry_after` when it said when to come back.

    `rate_limited` (a 429) waits what the vendor asks and does not count as a failed attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        rate_limited: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.retry_after = retry_after
        self.status = status  # the HTTP status, when the API answered

    @property
    def refused_request(self) -> bool:
        """True when the API refused what was asked (a 4xx other than auth and rate limits)."""
        return (
            self.status is not None and 400 <= self.status < 500 and self.status not in _NOT_ASKED
        )


_NOT_ASKED = frozenset({401, 403, 408, 429})  # credentials, timeouts and limits: not the ids


def json_answer(
    response: httpx.Response, label: str, *, retry_after: float | None
) -> dict[str, Any]:
    """Return the JSON object of a successful answer; raise ApiError for anything else.

    `retry_after` is what the vendor's headers ask to wait when the answer is a 429.
    """
    status = response.status_code
    if status == 429:
        raise ApiError(
            f"{label}: 429 {response.text[:200]}", rate_limited=True, retry_after=retry_after
        )
    if status >= 400:
        raise ApiError(f"{label}: {status} {response.text[:200]}", status=status)
    try:
        answer = response.json()
    except ValueError as exc:
        raise ApiError(f"{label}: not JSON: {response.text[:200]}") from exc
    if not isinstance(answer, dict):
        raise ApiError(f"{label}: expected a JSON object")
    return answer
