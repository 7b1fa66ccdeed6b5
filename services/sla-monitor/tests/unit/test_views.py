from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tandem_shared.directory import Directory
from tandem_shared.events import ActivityLogged
from tandem_sla_monitor.domain.clock import ClockStatus, SlaClock, fire, record_activity
from tandem_sla_monitor.domain.schedule import FiringKind
from tandem_sla_monitor.domain.views import clock_view

MONDAY_10AM = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))
ActivityFactory = Callable[..., ActivityLogged]


def test_running_clock_shows_the_time_left(clock: SlaClock) -> None:
    view = clock_view(clock, now=MONDAY_10AM + timedelta(minutes=5))
    assert view.status is ClockStatus.RUNNING
    assert view.elapsed_business_seconds == 300
    assert view.remaining_business_seconds == 600
    assert view.remaining_wall_seconds == 600
    assert view.next_kind is FiringKind.WARNING and view.next_due_at == clock.warning_at


def test_overdue_clock_has_no_business_time_left_and_negative_wall_time(
    clock: SlaClock, directory: Directory
) -> None:
    now = clock.deadline + timedelta(minutes=2)
    breached, _ = fire(clock, now, directory)
    view = clock_view(breached, now=now)
    assert view.status is ClockStatus.BREACHED
    assert view.remaining_business_seconds == 0
    assert view.remaining_wall_seconds == -120


def test_touched_clock_stops_counting(
    clock: SlaClock, directory: Directory, activity: ActivityFactory
) -> None:
    touched_at = MONDAY_10AM + timedelta(minutes=7)
    met, _ = record_activity(clock, activity(touched_at), team_ids=set(), directory=directory)
    view = clock_view(met, now=MONDAY_10AM + timedelta(hours=3))
    assert view.status is ClockStatus.MET
    assert view.elapsed_business_seconds == 420
    assert view.remaining_business_seconds is None and view.remaining_wall_seconds is None
    assert view.next_due_at is None and view.touched_at == touched_at
