"""Per-channel pacing: token bucket, bounded delay, coalescing bursts into a summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tandem_alerts.domain.pacing import (
    ChannelPacer,
    Pace,
    PacingPolicy,
    QueuedAlert,
    pace_channel,
)

T0 = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
POLICY = PacingPolicy(rate_per_second=1.0, burst=3.0, max_delay=timedelta(seconds=3))


def queue(count: int, at: datetime = T0) -> list[QueuedAlert]:
    return [QueuedAlert(alert_id=f"a{i}", enqueued_at=at) for i in range(count)]


def drain(
    queued: list[QueuedAlert], *, start: datetime
) -> list[tuple[float, Pace, tuple[str, ...]]]:
    """Run the pacer like the shell does until the queue is empty; return what was sent when."""
    pacer, now, sent = ChannelPacer(), start, []
    pending = list(queued)
    while pending:
        decision = pace_channel(pacer, pending, now=now, policy=POLICY)
        pacer = decision.pacer
        if decision.pace is Pace.WAIT:
            now += timedelta(seconds=decision.wait_seconds)
            continue
        sent.append(((now - start).total_seconds(), decision.pace, decision.alert_ids))
        pending = [q for q in pending if q.alert_id not in decision.alert_ids]
    return sent


def test_an_empty_queue_is_idle():
    assert pace_channel(ChannelPacer(), [], now=T0, policy=POLICY).pace is Pace.IDLE


def test_a_single_alert_goes_now_and_spends_a_token():
    decision = pace_channel(ChannelPacer(), queue(1), now=T0, policy=POLICY)
    assert (decision.pace, decision.alert_ids) == (Pace.SEND, ("a0",))
    assert decision.pacer.tokens == 2.0


def test_a_small_burst_goes_one_by_one_within_the_delay_bound():
    sent = drain(queue(5), start=T0)
    assert [pace for _, pace, _ in sent] == [Pace.SEND] * 5
    assert [ids for _, _, ids in sent] == [("a0",), ("a1",), ("a2",), ("a3",), ("a4",)]
    assert max(at for at, _, _ in sent) <= POLICY.max_delay.total_seconds()


def test_a_large_burst_is_coalesced_into_one_summary():
    sent = drain(queue(10), start=T0)
    assert sent == [(0.0, Pace.COALESCE, tuple(f"a{i}" for i in range(10)))]


def test_an_empty_bucket_waits_for_the_next_token():
    pacer = ChannelPacer(tokens=0.25, updated_at=T0)
    decision = pace_channel(pacer, queue(1), now=T0, policy=POLICY)
    assert decision.pace is Pace.WAIT
    assert decision.wait_seconds == 0.75


def test_tokens_refill_over_time_up_to_the_burst():
    pacer = ChannelPacer(tokens=0.0, updated_at=T0)
    assert pacer.refilled(now=T0 + timedelta(seconds=2), policy=POLICY).tokens == 2.0
    assert pacer.refilled(now=T0 + timedelta(minutes=5), policy=POLICY).tokens == 3.0


def test_a_429_blocks_the_channel_for_retry_after():
    pacer = ChannelPacer().throttled(now=T0, retry_after=30)
    waiting = pace_channel(pacer, queue(1), now=T0 + timedelta(seconds=10), policy=POLICY)
    assert (waiting.pace, waiting.wait_seconds) == (Pace.WAIT, 20.0)
    after = pace_channel(pacer, queue(1), now=T0 + timedelta(seconds=30), policy=POLICY)
    assert after.pace is Pace.SEND and after.pacer.blocked_until is None


def test_alerts_that_already_waited_too_long_are_coalesced():
    pacer = ChannelPacer(tokens=1.0, updated_at=T0 + timedelta(seconds=10))
    stale = queue(2, at=T0)
    decision = pace_channel(pacer, stale, now=T0 + timedelta(seconds=10), policy=POLICY)
    assert decision.pace is Pace.COALESCE


def test_state_round_trips_through_json():
    pacer = pace_channel(ChannelPacer(), queue(1), now=T0, policy=POLICY).pacer
    assert ChannelPacer.model_validate_json(pacer.model_dump_json()) == pacer


@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=30))
def test_nothing_is_dropped_and_nobody_waits_without_bound(arrival_offsets):
    queued = [
        QueuedAlert(alert_id=f"a{i}", enqueued_at=T0 + timedelta(seconds=offset))
        for i, offset in enumerate(sorted(arrival_offsets))
    ]
    latest = T0 + timedelta(seconds=max(arrival_offsets))

    sent = drain(queued, start=latest)

    delivered = [alert_id for _, _, ids in sent for alert_id in ids]
    assert sorted(delivered) == sorted(q.alert_id for q in queued)
    assert len(sent) <= len(queued)
    assert all(at <= POLICY.max_delay.total_seconds() + 1 for at, _, _ in sent)
