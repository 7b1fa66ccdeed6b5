"""A circuit breaker per destination: stop hammering a Slack channel or mail server that is down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class CircuitState(StrEnum):
    CLOSED = "closed"  # sending normally
    OPEN = "open"  # failing: hold sends until the open period is over
    HALF_OPEN = "half_open"  # one trial send decides whether to close again


@dataclass(frozen=True, kw_only=True)
class CircuitPolicy:
    failure_threshold: int = 5  # consecutive transient failures that open the circuit
    open_for: timedelta = timedelta(seconds=60)
    # A trial that never reports back (a crashed worker) must not hold the circuit forever.
    trial_timeout: timedelta = timedelta(seconds=60)


DEFAULT_CIRCUIT_POLICY = CircuitPolicy()


class Circuit(BaseModel):
    """The breaker state of one destination; immutable, JSON-serializable with model_dump."""

    model_config = ConfigDict(frozen=True)

    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    trial_started_at: datetime | None = None

    def admit(
        self, *, now: datetime, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY
    ) -> tuple[bool, Circuit]:
        """Return whether a send may go now, and the state after admitting it."""
        if self.state is CircuitState.CLOSED:
            return True, self
        if self.state is CircuitState.OPEN:
            if self.opened_at is not None and now < self.opened_at + policy.open_for:
                return False, self
            return True, self._trial(now)
        if self.trial_started_at is None or now >= self.trial_started_at + policy.trial_timeout:
            return True, self._trial(now)
        return False, self

    def retry_at(self, *, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY) -> datetime | None:
        """Return when an open circuit lets a trial through, or None when it is not open."""
        if self.state is CircuitState.OPEN and self.opened_at is not None:
            return self.opened_at + policy.open_for
        if self.state is CircuitState.HALF_OPEN and self.trial_started_at is not None:
            return self.trial_started_at + policy.trial_timeout
        return None

    def on_success(self) -> Circuit:
        """Record a successful send: the circuit closes."""
        return Circuit()

    def on_failure(
        self, *, now: datetime, policy: CircuitPolicy = DEFAULT_CIRCUIT_POLICY
    ) -> Circuit:
        """Record a transient failure (a permanent one says nothing of the destination's health)."""
        failures = self.consecutive_failures + 1
        if self.state is CircuitState.OPEN:
            # A send admitted before the circuit opened: it must not extend the open period.
            return self.model_copy(update={"consecutive_failures": failures})
        if self.state is CircuitState.HALF_OPEN or failures >= policy.failure_threshold:
            return Circuit(state=CircuitState.OPEN, consecutive_failures=failures, opened_at=now)
        return Circuit(consecutive_failures=failures)

    def _trial(self, now: datetime) -> Circuit:
        return Circuit(
            state=CircuitState.HALF_OPEN,
            consecutive_failures=self.consecutive_failures,
            opened_at=self.opened_at,
            trial_started_at=now,
        )
