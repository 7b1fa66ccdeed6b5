"""Recording a send's outcome survives a database that is briefly away (no database here)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from tandem_alerts.adapters.destinations import DestinationState
from tandem_alerts.adapters.senders import NotConfigured, SendResult
from tandem_alerts.delivery_record import Job, OutcomeRecorder, Sent
from tandem_alerts.domain.circuit import Circuit
from tandem_alerts.domain.pacing import ChannelPacer
from tandem_alerts.settings import AlertsOptions
from tandem_shared.events import DeliveryChannel


def _worker(*, stopping: bool = False) -> OutcomeRecorder:
    options = AlertsOptions()
    return OutcomeRecorder(
        sessions=None,  # type: ignore[arg-type]
        clock=lambda: datetime.now(UTC),
        retry=options.retry_policy(),
        circuit=options.circuit_policy(),
        stopping=lambda: stopping,
    )


def _job(lease_left: float) -> Job:
    state = DestinationState(DeliveryChannel.SLACK, "C1", ChannelPacer(), Circuit())
    return Job(state, [], {}, lease_ends=time.monotonic() + lease_left, lease_seconds=120)


_SENT = Sent([], SendResult(), duration_ms=1)
_FAILED = Sent([], SendResult(failure=NotConfigured("slack")), duration_ms=1)


class _StartingUp(Exception):
    sqlstate = "57P03"  # cannot_connect_now: the server is starting


def _gone() -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, _StartingUp("the database system is starting up"))


class _Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, *_: Any, **__: Any) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


async def test_a_transient_database_failure_is_retried_until_the_outcome_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, flaky = _worker(), _Flaky([_gone(), OSError("connection refused")])
    monkeypatch.setattr(worker, "record_once", flaky)
    await worker.record(_job(lease_left=30), [_SENT], release=True)
    assert flaky.calls == 3


async def test_a_failure_that_is_not_the_database_being_away_is_raised_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = _worker()
    failure = sa_exc.DBAPIError("INSERT", None, ValueError("a bug"))
    flaky = _Flaky([failure])
    monkeypatch.setattr(worker, "record_once", flaky)
    with pytest.raises(sa_exc.DBAPIError):
        await worker.record(_job(lease_left=30), [_SENT], release=True)
    assert flaky.calls == 1


async def test_a_failures_record_stops_retrying_when_the_lease_would_run_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given up, a failed delivery is simply tried again by the next lease.
    worker, flaky = _worker(), _Flaky([_gone() for _ in range(100)])
    monkeypatch.setattr(worker, "record_once", flaky)
    with pytest.raises(sa_exc.DBAPIError):
        await worker.record(_job(lease_left=0.5), [_FAILED], release=True)
    assert 1 < flaky.calls < 10


async def test_a_sent_messages_record_outlasts_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given up, a message that is out would go again: it is recorded past the lease's end.
    worker, flaky = _worker(), _Flaky([_gone() for _ in range(3)])
    monkeypatch.setattr(worker, "record_once", flaky)
    started = time.monotonic()
    await worker.record(_job(lease_left=0.2), [_SENT], release=True)
    assert flaky.calls == 4
    assert time.monotonic() - started > 0.2  # it went on after the lease


async def test_a_stopping_worker_records_a_sent_message_only_while_the_lease_lasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, flaky = _worker(stopping=True), _Flaky([_gone() for _ in range(100)])
    monkeypatch.setattr(worker, "record_once", flaky)
    with pytest.raises(sa_exc.DBAPIError):
        await worker.record(_job(lease_left=0.5), [_SENT], release=True)
    assert 1 < flaky.calls < 10
