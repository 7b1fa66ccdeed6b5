"""How a vendor API client says it could not answer: the lookup worker puts the lookups off."""

from __future__ import annotations


class ApiError(Exception):
    """The vendor's API did not answer usefully; `retry_after` when it said when to come back.

    `rate_limited` (a 429) waits what the vendor asks and does not count as a failed attempt.
    """

    def __init__(
        self, message: str, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.retry_after = retry_after
