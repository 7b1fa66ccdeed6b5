"""What one lease of a destination sends: the circuit breaker and the pacer asked once per message.

A destination's holder sends several messages per lease, so a backlog costs one claim and one
record per lease rather than per alert. Each message is what the pacer would have let go had it
been asked message by message: the same decisions, in the same order, without the round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tandem_alerts.domain.circuit import Circuit, CircuitPolicy, CircuitState
from tandem_alerts.domain.pacing import (
    ChannelPacer,
    Pace,
    PacingPolicy,
    QueuedAlert,
    pace_channel,
)


@dataclass(frozen=True)
class Admission:
    """The messages that go now (each one alert, or several as one summary) and what waits."""

    messages: tuple[tuple[str, ...], ...]
    pacer: ChannelPacer
    circuit: Circuit
    held: tuple[str, ...] = ()  # queued alerts to move to `held_until`
    held_until: datetime | None = None


def admit(
    queued: Sequence[QueuedAlert],
    *,
    pacer: ChannelPacer,
    circuit: Circuit,
    paced: bool,
    most: int,
    now: datetime,
    circuit_policy: CircuitPolicy,
    pacing_policy: PacingPolicy,
) -> Admission:
    """Return up to `most` messages for the queue, in the order they go.

    `paced` channels (Slack) spend a token per message and may coalesce a backlog into one
    summary; the others send each alert alone. A circuit letting a trial through admits one
    message: its outcome decides whether the rest may follow. What is neither sent nor held stays
    due, and the next lease takes it.
    """
    if not queued:
        return Admission((), pacer, circuit)
    admitted, after = circuit.admit(now=now, policy=circuit_policy)
    if not admitted:
        retry_at = after.retry_at(policy=circuit_policy) or now
        return Admission((), pacer, circuit, _ids(queued), max(retry_at, now))
    if after.state is not CircuitState.CLOSED:
        most = 1
    if not paced:
        return Admission(tuple((q.alert_id,) for q in queued[:most]), pacer, after)
    messages: list[tuple[str, ...]] = []
    rest = list(queued)
    while rest and len(messages) < most:
        decision = pace_channel(pacer, rest, now=now, policy=pacing_policy)
        pacer = decision.pacer
        if decision.pace is Pace.WAIT:
            # Nothing sent: a half-open circuit keeps its trial for the real send.
            kept = after if messages else circuit
            until = now + timedelta(seconds=decision.wait_seconds)
            return Admission(tuple(messages), pacer, kept, _ids(rest), until)
        picked = set(decision.alert_ids)
        messages.append(tuple(q.alert_id for q in rest if q.alert_id in picked))
        rest = [q for q in rest if q.alert_id not in picked]
    return Admission(tuple(messages), pacer, after)


def _ids(queued: Sequence[QueuedAlert]) -> tuple[str, ...]:
    return tuple(q.alert_id for q in queued)
