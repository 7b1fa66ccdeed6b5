"""Percentiles from two order statistics equal `metrics.percentile`, bit for bit; a rank is
found in a histogram's buckets; a period splits into whole UTC days (months) and the partial
days (months) at its edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem_api_gateway.domain.metric_aggregates import (
    DaySplit,
    TouchGroup,
    interpolated,
    locate,
    order_statistics,
    split_days,
    split_months,
    touch_times,
)
from tandem_api_gateway.domain.metrics import percentile
from tandem_shared.events import Signal, Tier

seconds = st.floats(min_value=0, max_value=10**8, allow_nan=False, allow_infinity=False)


@given(st.lists(seconds, min_size=1, max_size=300), st.sampled_from([1, 10, 50, 90, 99]))
def test_two_order_statistics_give_the_percentile(values: list[float], pct: int) -> None:
    ordered = sorted(values)
    low, high = order_statistics(len(ordered), pct)
    assert interpolated(len(ordered), pct, ordered[low], ordered[high]) == percentile(values, pct)


def test_no_values_no_percentile() -> None:
    assert interpolated(0, 50, None, None) is None
    with pytest.raises(ValueError, match="no values"):
        order_statistics(0, 50)
    with pytest.raises(ValueError, match="upper"):
        interpolated(3, 50, 1.0, None)


def test_touch_groups_come_in_the_order_of_the_python_definition() -> None:
    def group(tier: Tier, signal: Signal | None) -> TouchGroup:
        return TouchGroup(
            tier, signal, handoffs=3, touched=2, around={50: (1.0, 3.0), 90: (1.0, 3.0)}
        )

    shuffled = [
        group(Tier.T2, Signal.INTENT_SURGE),
        group(Tier.T1, None),
        group(Tier.T2, None),
        group(Tier.T1, Signal.INBOUND_LEAD),
        group(Tier.T1, Signal.MEETING_REQUEST),
    ]
    listed = touch_times(shuffled)
    assert [(t.tier, t.signal) for t in listed] == [
        (Tier.T1, None),
        (Tier.T1, Signal.MEETING_REQUEST),
        (Tier.T1, Signal.INBOUND_LEAD),
        (Tier.T2, None),
        (Tier.T2, Signal.INTENT_SURGE),
    ]
    assert (listed[0].touched, listed[0].untouched, listed[0].median_seconds) == (2, 1, 2.0)
    assert listed[0].p90_seconds == percentile([1.0, 3.0], 90)


def _at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def test_a_period_splits_into_whole_utc_days_and_its_edges() -> None:
    split = split_days(_at(3, 5), _at(9, 13, 30))
    assert (split.days, split.first_day, split.end_day) == (
        True,
        date(2025, 3, 4),
        date(2025, 3, 9),
    )
    assert split.edges == ((_at(3, 5), _at(4)), (_at(9), _at(9, 13, 30)))


def test_bounds_on_midnight_leave_no_edges_and_open_bounds_no_limit() -> None:
    assert split_days(_at(3), _at(9)) == DaySplit(True, date(2025, 3, 3), date(2025, 3, 9), ())
    assert split_days(None, None) == DaySplit(True, None, None, ())
    assert split_days(_at(3, 5), None) == DaySplit(
        True, date(2025, 3, 4), None, ((_at(3, 5), _at(4)),)
    )
    assert split_days(None, _at(9, 1)) == DaySplit(
        True, None, date(2025, 3, 9), ((_at(9), _at(9, 1)),)
    )


def test_a_period_without_a_whole_day_is_all_edge() -> None:
    within = split_days(_at(3, 1), _at(3, 9))
    across = split_days(_at(3, 20), _at(4, 3))  # one midnight, no whole day
    assert within == DaySplit(False, None, None, ((_at(3, 1), _at(3, 9)),))
    assert across == DaySplit(False, None, None, ((_at(3, 20), _at(4, 3)),))


def test_days_are_utc_days_whatever_the_bounds_offset() -> None:
    paris = timezone(timedelta(hours=1))
    split = split_days(datetime(2025, 3, 4, 0, 30, tzinfo=paris), None)  # 3 March, 23:30 UTC
    assert split.first_day == date(2025, 3, 4)
    assert split.edges == ((datetime(2025, 3, 4, 0, 30, tzinfo=paris), _at(4)),)


def test_a_period_splits_into_whole_utc_months_and_its_edges() -> None:
    start, end = datetime(2025, 1, 30, 5, tzinfo=UTC), datetime(2025, 4, 2, tzinfo=UTC)
    split = split_months(start, end)
    assert (split.days, split.first_day, split.end_day) == (
        True,
        date(2025, 2, 1),
        date(2025, 4, 1),
    )
    february, april = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    assert split.edges == ((start, february), (april, end))
    december = datetime(2024, 12, 31, 23, tzinfo=UTC)  # the year's last month rolls over
    assert split_months(december, None).first_day == date(2025, 1, 1)
    assert split_months(None, None) == DaySplit(True, None, None, ())
    within = split_months(start, datetime(2025, 2, 20, tzinfo=UTC))  # no whole month
    assert within == DaySplit(False, None, None, ((start, datetime(2025, 2, 20, tzinfo=UTC)),))


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5)), min_size=1, max_size=30))
def test_a_rank_is_found_in_its_bucket(counted: list[tuple[int, int]]) -> None:
    counts: dict[int, int] = {}
    for bucket, n in counted:
        counts[bucket] = counts.get(bucket, 0) + n
    # The values as the buckets hold them, in order: bucket b's i-th value is (b, i).
    values = [(b, i) for b in sorted(counts) for i in range(counts[b])]
    for rank, value in enumerate(values):
        assert locate(counts, rank) == value
    with pytest.raises(ValueError, match="beyond"):
        locate(counts, len(values))
