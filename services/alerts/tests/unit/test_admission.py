"""What one lease of a destination sends: several messages, as the pacer and the breaker allow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tandem_alerts.domain.admission import Admission, admit
from tandem_alerts.domain.circuit import Circuit, CircuitPolicy, CircuitState
from tandem_alerts.domain.pacing import ChannelPacer, Pace, PacingPolicy, QueuedAlert, pace_channel

T0 = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
PACING = PacingPolicy(rate_per_second=1.0, burst=3.0, max_delay=timedelta(seconds=3))
LIFTED = PacingPolicy(rate_per_second=1e6, burst=1e6)
CIRCUIT = CircuitPolicy(failure_threshold=1, open_for=timedelta(seconds=60))


def queue(count: int) -> list[QueuedAlert]:
    return [QueuedAlert(alert_id=f"a{i}", enqueued_at=T0) for i in range(count)]


def lease(
    queued: list[QueuedAlert],
    *,
    pacer: ChannelPacer | None = None,
    circuit: Circuit | None = None,
    paced: bool = True,
    most: int = 20,
    pacing: PacingPolicy = PACING,
) -> Admission:
    return admit(
        queued,
        pacer=pacer or ChannelPacer(),
        circuit=circuit or Circuit(),
        paced=paced,
        most=most,
        now=T0,
        circuit_policy=CIRCUIT,
        pacing_policy=pacing,
    )


def test_without_a_pace_to_keep_a_lease_sends_each_alert_alone_up_to_its_limit() -> None:
    admission = lease(queue(30), pacing=LIFTED, most=20)
    assert admission.messages == tuple((f"a{i}",) for i in range(20))
    assert admission.held == ()  # the other ten stay due for the next lease


def test_a_paced_channel_sends_its_burst_then_holds_the_rest_until_a_token_is_earned() -> None:
    admission = lease(queue(5))
    assert admission.messages == (("a0",), ("a1",), ("a2",))
    assert admission.held == ("a3", "a4")
    assert admission.held_until == T0 + timedelta(seconds=1)
    assert admission.pacer.tokens < 1


def test_a_backlog_too_long_to_send_one_by_one_goes_as_one_summary() -> None:
    admission = lease(queue(8))
    assert admission.messages == (tuple(f"a{i}" for i in range(8)),)


def test_a_circuit_letting_one_trial_through_admits_one_message() -> None:
    opened = Circuit(
        state=CircuitState.OPEN, consecutive_failures=1, opened_at=T0 - timedelta(minutes=2)
    )
    admission = lease(queue(5), circuit=opened, pacing=LIFTED)
    assert admission.messages == (("a0",),)
    assert admission.circuit.state is CircuitState.HALF_OPEN


def test_an_open_circuit_sends_nothing_and_holds_the_queue_until_its_trial() -> None:
    opened = Circuit(state=CircuitState.OPEN, consecutive_failures=1, opened_at=T0)
    admission = lease(queue(3), circuit=opened)
    assert admission.messages == ()
    assert admission.held == ("a0", "a1", "a2")
    assert admission.held_until == T0 + CIRCUIT.open_for
    assert admission.circuit == opened


def test_a_pacer_with_no_token_keeps_a_half_open_trial_for_the_real_send() -> None:
    opened = Circuit(
        state=CircuitState.OPEN, consecutive_failures=1, opened_at=T0 - timedelta(minutes=2)
    )
    empty = ChannelPacer(tokens=0.0, updated_at=T0)
    admission = lease(queue(2), pacer=empty, circuit=opened)
    assert admission.messages == ()
    assert admission.circuit == opened


def test_channels_without_a_pace_never_coalesce() -> None:
    admission = lease(queue(8), paced=False, most=5)
    assert admission.messages == tuple((f"a{i}",) for i in range(5))


@given(count=st.integers(1, 12), tokens=st.floats(0, 3), most=st.integers(1, 6))
def test_a_lease_sends_what_the_pacer_asked_one_message_at_a_time_would(
    count: int, tokens: float, most: int
) -> None:
    pacer = ChannelPacer(tokens=tokens, updated_at=T0)
    admission = lease(queue(count), pacer=pacer, most=most)
    expected: list[tuple[str, ...]] = []
    pending = queue(count)
    while pending and len(expected) < most:
        decision = pace_channel(pacer, pending, now=T0, policy=PACING)
        pacer = decision.pacer
        if decision.pace is Pace.WAIT:
            break
        expected.append(decision.alert_ids)
        pending = [q for q in pending if q.alert_id not in decision.alert_ids]
    assert admission.messages == tuple(expected)
    assert admission.pacer == pacer
    sent = {i for message in admission.messages for i in message}
    assert sent.isdisjoint(admission.held)
