"""Percentiles from two order statistics equal `metrics.percentile`, bit for bit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem_api_gateway.domain.metric_aggregates import (
    TouchGroup,
    interpolated,
    order_statistics,
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
