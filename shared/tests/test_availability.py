"""Run-time availability merged over the people.yaml seed."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from tandem_shared.availability import Availability, apply, merge
from tandem_shared.directory import Period, WorkingHours, load_directory
from tandem_shared.events import AvailabilityChanged

ROOT = Path(__file__).resolve().parents[2]
SEED = load_directory(ROOT / "config/example/people.yaml")
T0 = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
AWAY = Period(start=T0, end=T0 + timedelta(days=2))


def change(at: datetime, **fields: object) -> AvailabilityChanged:
    return AvailabilityChanged(
        change_id=f"c-{at.isoformat()}",
        person_id="ava.ae",
        changed_by="ava.ae",
        via="slack",
        changed_at=at,
        **fields,  # type: ignore[arg-type]
    )


def test_changes_merge_field_by_field_and_an_older_one_loses() -> None:
    first = merge(None, change(T0, out_of_office=[AWAY], cover_id="chloe.ae"))
    second = merge(first, change(T0 + timedelta(minutes=1), capacity=3))
    assert (second.out_of_office, second.cover_id, second.capacity) == ((AWAY,), "chloe.ae", 3)
    stale = merge(second, change(T0 - timedelta(hours=1), out_of_office=[]))
    assert stale == second
    back = merge(second, change(T0 + timedelta(minutes=2), out_of_office=[], clear_cover=True))
    assert (back.out_of_office, back.cover_id, back.clear_cover) == ((), None, True)


def test_the_seed_stays_for_what_was_never_changed() -> None:
    hours = WorkingHours(start=time(8), end=time(16))
    overrides = {
        "ava.ae": Availability(
            person_id="ava.ae", out_of_office=(AWAY,), working_hours=hours, changed_at=T0
        )
    }
    live = apply(SEED, overrides)
    ava = live.get("ava.ae")
    assert ava is not None and ava.is_out_of_office(T0 + timedelta(hours=1))
    assert ava.cover_id == "ben.ae" and ava.capacity == 20  # from people.yaml
    assert ava.working_hours == hours
    assert live.get("ben.ae") == SEED.get("ben.ae")
    assert apply(SEED, {}) is SEED
