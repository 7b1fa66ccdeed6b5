"""Circuit breaker transitions per destination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tandem_alerts.domain.circuit import Circuit, CircuitPolicy, CircuitState

T0 = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
POLICY = CircuitPolicy(
    failure_threshold=3, open_for=timedelta(seconds=60), trial_timeout=timedelta(seconds=30)
)


def failed(circuit: Circuit, times: int, at: datetime = T0) -> Circuit:
    for _ in range(times):
        circuit = circuit.on_failure(now=at, policy=POLICY)
    return circuit


def test_closed_circuit_admits_and_counts_failures():
    circuit = failed(Circuit(), 2)
    allowed, same = circuit.admit(now=T0, policy=POLICY)
    assert allowed and same.state is CircuitState.CLOSED
    assert circuit.consecutive_failures == 2


def test_success_resets_the_count():
    assert failed(Circuit(), 2).on_success() == Circuit()


def test_threshold_opens_the_circuit_and_holds_sends():
    circuit = failed(Circuit(), 3)
    assert circuit.state is CircuitState.OPEN
    assert circuit.retry_at(policy=POLICY) == T0 + timedelta(seconds=60)
    allowed, _ = circuit.admit(now=T0 + timedelta(seconds=59), policy=POLICY)
    assert not allowed


def test_after_the_open_period_exactly_one_trial_goes_through():
    circuit = failed(Circuit(), 3)
    later = T0 + timedelta(seconds=60)

    allowed, trial = circuit.admit(now=later, policy=POLICY)
    second, _ = trial.admit(now=later, policy=POLICY)

    assert allowed and trial.state is CircuitState.HALF_OPEN
    assert not second


def test_successful_trial_closes_and_failed_trial_reopens():
    _, trial = failed(Circuit(), 3).admit(now=T0 + timedelta(seconds=61), policy=POLICY)

    assert trial.on_success().state is CircuitState.CLOSED
    reopened = trial.on_failure(now=T0 + timedelta(seconds=62), policy=POLICY)
    assert reopened.state is CircuitState.OPEN
    assert reopened.opened_at == T0 + timedelta(seconds=62)


def test_a_trial_that_never_reports_is_replaced_after_its_timeout():
    _, trial = failed(Circuit(), 3).admit(now=T0 + timedelta(seconds=60), policy=POLICY)
    allowed, again = trial.admit(now=T0 + timedelta(seconds=90), policy=POLICY)
    assert allowed and again.trial_started_at == T0 + timedelta(seconds=90)


def test_late_failures_while_open_do_not_extend_the_open_period():
    circuit = failed(Circuit(), 3)
    later = circuit.on_failure(now=T0 + timedelta(seconds=30), policy=POLICY)
    assert later.opened_at == T0 and later.consecutive_failures == 4


def test_state_round_trips_through_json():
    circuit = failed(Circuit(), 3)
    assert Circuit.model_validate_json(circuit.model_dump_json()) == circuit
