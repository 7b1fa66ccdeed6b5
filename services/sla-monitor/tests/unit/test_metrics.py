from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tandem_shared.directory import Directory, Person
from tandem_shared.events import ActivityLogged, RoutingDecided, Signal, Tier
from tandem_sla_monitor.domain.clock import SlaClock, fire, record_activity, start_clock
from tandem_sla_monitor.domain.metrics import distribution, handoff_metrics, sla_metrics
from tandem_sla_monitor.domain.policy import SlaPolicy

NEW_YORK = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


@pytest.fixture
def make_clock(
    decision: Callable[..., RoutingDecided],
    activity: Callable[..., ActivityLogged],
    ava: Person,
    policy: SlaPolicy,
    directory: Directory,
) -> Callable[..., SlaClock]:
    counter = iter(range(1000))

    def make(
        started: datetime,
        *,
        touched: datetime | None = None,
        fired_at: datetime | None = None,
        tier: Tier = Tier.T1,
        signal: Signal = Signal.MEETING_REQUEST,
    ) -> SlaClock:
        n = next(counter)
        clock, _ = start_clock(
            decision(started, tier=tier, signal=signal, handoff_id=f"h{n}"), ava, policy
        )
        if fired_at is not None:
            clock, _ = fire(clock, fired_at, directory)
        if touched is not None:
            done = activity(touched, activity_id=f"a{n}")
            clock, _ = record_activity(clock, done, team_ids=frozenset(), directory=directory)
        return clock

    return make


def test_success_rate_counts_met_against_decided(make_clock: Callable[..., SlaClock]) -> None:
    start = ny(2026, 3, 2, 10, 0)
    clocks = [
        make_clock(start, touched=ny(2026, 3, 2, 10, 5)),  # met
        make_clock(start, touched=ny(2026, 3, 2, 10, 10)),  # met
        make_clock(start, touched=ny(2026, 3, 2, 10, 40)),  # late touch
        make_clock(start, fired_at=ny(2026, 3, 2, 11, 0)),  # breached, never touched
        make_clock(start),  # still running
    ]
    metrics = handoff_metrics(clocks)
    assert (metrics.handoffs, metrics.met, metrics.breached, metrics.open) == (5, 2, 2, 1)
    assert metrics.success_rate == pytest.approx(2 / 4)


def test_first_touch_in_business_and_wall_seconds(make_clock: Callable[..., SlaClock]) -> None:
    # Ten minutes before close, then ten after the next opening: 20 business minutes.
    overnight = make_clock(ny(2026, 3, 2, 17, 20), touched=ny(2026, 3, 3, 9, 10))
    metrics = handoff_metrics([overnight])
    assert metrics.first_touch_business.median == 20 * 60
    wall = (ny(2026, 3, 3, 9, 10) - ny(2026, 3, 2, 17, 20)).total_seconds()
    assert metrics.first_touch_wall.median == wall
    assert metrics.first_touch_wall.p90 == wall


def test_distribution_median_and_p90() -> None:
    spread = distribution([300, 600, 1200])
    assert spread.median == 600
    # Linear interpolation at 90%: 0.8 of the way from 600 to 1200.
    assert spread.p90 == pytest.approx(600 + 0.8 * 600)
    assert distribution([]).median is None


def test_metrics_by_tier_and_signal(make_clock: Callable[..., SlaClock]) -> None:
    start = ny(2026, 3, 2, 10, 0)
    clocks = [
        make_clock(start, touched=ny(2026, 3, 2, 10, 5)),
        make_clock(start, fired_at=ny(2026, 3, 2, 11, 0)),
        make_clock(start, tier=Tier.T3, signal=Signal.INBOUND_LEAD, touched=ny(2026, 3, 2, 12)),
    ]
    metrics = sla_metrics(clocks)
    assert metrics.overall.handoffs == 3
    assert metrics.by_tier[Tier.T1].success_rate == pytest.approx(0.5)
    assert metrics.by_tier[Tier.T3].success_rate == 1.0
    assert metrics.by_signal[Signal.INBOUND_LEAD].first_touch_business.median == 2 * 3600
    cells = {(m.tier, m.signal): m.handoffs for m in metrics.by_tier_and_signal}
    assert cells == {(Tier.T1, Signal.MEETING_REQUEST): 2, (Tier.T3, Signal.INBOUND_LEAD): 1}


def test_no_decided_handoffs_has_no_success_rate(make_clock: Callable[..., SlaClock]) -> None:
    metrics = handoff_metrics([make_clock(ny(2026, 3, 2, 10, 0))])
    assert metrics.success_rate is None
    assert metrics.first_touch_business.count == 0
