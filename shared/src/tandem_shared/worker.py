"""A worker that polls PostgreSQL for due work: SLA timers, alert deliveries, digests, purges."""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod

import structlog
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError

log = structlog.get_logger(__name__)

TICK_ERRORS = Counter("tandem_worker_tick_errors_total", "Worker rounds that failed", ["worker"])


class PollingWorker(ABC):
    """Runs `tick()` every `interval` seconds until stopped.

    The work lives in PostgreSQL, so a round that fails on the database or the network is
    logged and tried again next round; readiness fails once no round has completed for
    `stall_seconds` (None: never, for work that is not urgent).
    """

    def __init__(self, *, interval: float, stall_seconds: float | None) -> None:
        self._interval = interval
        self._stall_seconds = stall_seconds
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_tick = time.monotonic()

    @abstractmethod
    async def tick(self) -> int:
        """Do one round of due work; return how much was done."""

    def more_waiting(self, done: int) -> bool:
        """True when the round suggests more is due at once (skip the pause)."""
        return False

    async def after_tick(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Housekeeping after each successful round."""

    def stop(self) -> None:
        """Return from run() after the round in hand."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Start the next round now: work was just committed (the interval is the fallback)."""
        self._wake.set()

    def healthy(self) -> bool:
        """True while rounds keep completing."""
        if self._stall_seconds is None:
            return True
        return time.monotonic() - self._last_tick < self._stall_seconds

    async def run(self) -> None:
        """Tick until stopped, pausing `interval` unless more work is waiting."""
        name = type(self).__name__
        while not self._stopping.is_set():
            # Cleared before the round: a wake during the round starts the next one at once.
            self._wake.clear()
            try:
                done = await self.tick()
                await self.after_tick()
            except (OSError, DBAPIError) as exc:
                TICK_ERRORS.labels(name).inc()
                log.warning("worker round failed; retrying", worker=name, error=repr(exc))
                done = 0
            else:
                self._last_tick = time.monotonic()
            if not self.more_waiting(done):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)
