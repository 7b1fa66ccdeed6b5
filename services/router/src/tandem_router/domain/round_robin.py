"""Weighted, capacity- and availability-aware round robin (smooth weighted, over persisted credit).

Each pick adds every eligible rep's weight to their credit, gives the item to the rep with the most
credit (ties: the pool's member order) and takes the eligible total back from that rep. Over any run
each rep's share tracks weight / total within one assignment, and a rep who is skipped (away, full)
does not bank credit, so nobody returns to a flood of catch-up work.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tandem_router.domain.model import PoolState, RoundRobinState
from tandem_shared.directory import Directory, Person


@dataclass(frozen=True)
class Pick:
    """The outcome of one round-robin pick: who (or None and why) and the pool's next state."""

    person: Person | None
    reason: str
    state: RoundRobinState
    skipped: Mapping[str, str] = field(default_factory=dict)  # person id -> why not eligible


def within_working_hours(person: Person, at: datetime) -> bool:
    """Return True when `at` falls in the person's working days and hours, in their time zone."""
    local = at.astimezone(person.zone)
    hours = person.working_hours
    return local.isoweekday() in hours.days and hours.start <= local.time() < hours.end


# The one reason callers tell apart: a cover's away note says until when.
OUT_OF_OFFICE = "out of office"


def unavailability(
    person: Person, *, now: datetime, open_handoffs: int, enforce_working_hours: bool
) -> str | None:
    """Return why a rep cannot take a new handoff now, or None when they can."""
    if not person.active:
        return "inactive"
    if person.is_out_of_office(now):
        return OUT_OF_OFFICE
    if person.weight <= 0:
        return "weight 0"
    if open_handoffs >= person.capacity:
        return f"at capacity ({open_handoffs}/{person.capacity} open handoffs)"
    if enforce_working_hours and not within_working_hours(person, now):
        return f"outside working hours ({person.timezone})"
    return None


def pick(
    *,
    pool: str,
    members: Sequence[str],
    directory: Directory,
    state: RoundRobinState,
    open_handoffs: Mapping[str, int],
    now: datetime,
    enforce_working_hours: bool,
    exclude: Collection[str] = (),
) -> Pick:
    """Pick the next eligible rep of a pool; deterministic given the arguments."""
    eligible: list[Person] = []
    skipped: dict[str, str] = {}
    for person_id in members:
        person = directory.get(person_id)
        why = _why_not(person, person_id, now, open_handoffs, enforce_working_hours, exclude)
        if why is None and person is not None:
            eligible.append(person)
        else:
            skipped[person_id] = why or "unknown person"
    if not eligible:
        details = "; ".join(f"{pid}: {why}" for pid, why in skipped.items()) or "no members"
        return Pick(None, f"no eligible rep in pool {pool} ({details})", state, skipped)
    chosen, pool_state = _advance(state.pool(pool), eligible, members)
    pools = {**state.pools, pool: pool_state}
    reason = f"round robin in pool {pool}: {chosen.id} (weight {chosen.weight}) was next in turn"
    if skipped:
        reason += "; skipped " + ", ".join(f"{pid} ({why})" for pid, why in skipped.items())
    return Pick(chosen, reason, RoundRobinState(pools=pools), skipped)


def _why_not(
    person: Person | None,
    person_id: str,
    now: datetime,
    open_handoffs: Mapping[str, int],
    enforce_working_hours: bool,
    exclude: Collection[str],
) -> str | None:
    if person is None:
        return "unknown person"
    return why_not_now(
        person,
        now=now,
        open_handoffs=open_handoffs,
        enforce_working_hours=enforce_working_hours,
        exclude=exclude,
    )


def why_not_now(
    person: Person,
    *,
    now: datetime,
    open_handoffs: Mapping[str, int],
    enforce_working_hours: bool,
    exclude: Collection[str],
) -> str | None:
    """Return why a rep cannot take this handoff (excluded, or unavailable), or None."""
    if person.id in exclude:
        return "excluded (previous assignee)"
    return unavailability(
        person,
        now=now,
        open_handoffs=open_handoffs.get(person.id, 0),
        enforce_working_hours=enforce_working_hours,
    )


def _advance(
    pool_state: PoolState, eligible: Sequence[Person], members: Sequence[str]
) -> tuple[Person, PoolState]:
    """Run one step of smooth weighted round robin over the eligible reps."""
    credits = {pid: c for pid, c in pool_state.credits.items() if pid in members}
    for person in eligible:
        credits[person.id] = credits.get(person.id, 0) + person.weight
    # max() keeps the first of equals, so ties go to the earlier member: deterministic.
    chosen = max(eligible, key=lambda p: credits[p.id])
    credits[chosen.id] -= sum(p.weight for p in eligible)
    assigned = {**pool_state.assigned, chosen.id: pool_state.assigned.get(chosen.id, 0) + 1}
    return chosen, PoolState(credits=credits, assigned=assigned)
