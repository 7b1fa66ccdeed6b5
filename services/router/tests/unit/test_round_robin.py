from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tandem_router.domain.model import RoundRobinState
from tandem_router.domain.round_robin import pick, unavailability, within_working_hours
from tandem_shared.directory import Period, Role, WorkingHours


def run(make, directory, members, n, *, open_handoffs=None, state=None, **kw):
    """Pick n times, threading the state through; return the counts and the final state."""
    state = state or RoundRobinState()
    counts: Counter[str] = Counter()
    for _ in range(n):
        result = pick(
            pool="p",
            members=members,
            directory=directory,
            state=state,
            open_handoffs=open_handoffs or {},
            now=make.now,
            enforce_working_hours=kw.get("enforce", False),
        )
        assert result.person is not None
        counts[result.person.id] += 1
        state = result.state
    return counts, state


def test_equal_weights_stay_within_one_of_even_at_every_step(make):
    reps = [make.person(f"r{i}.sdr", Role.SDR) for i in range(7)]
    directory = make.directory(*reps)
    members = [r.id for r in reps]
    state = RoundRobinState()
    counts: Counter[str] = Counter()
    for _ in range(1000):
        result = pick(
            pool="p",
            members=members,
            directory=directory,
            state=state,
            open_handoffs={},
            now=make.now,
            enforce_working_hours=False,
        )
        counts[result.person.id] += 1
        state = result.state
        assert max(counts[m] for m in members) - min(counts[m] for m in members) <= 1
    assert sum(counts.values()) == 1000
    assert state.pool("p").assigned == dict(counts)


def test_weights_are_respected_proportionally(make):
    reps = [
        make.person("a.sdr", Role.SDR, weight=1),
        make.person("b.sdr", Role.SDR, weight=2),
        make.person("c.sdr", Role.SDR, weight=3),
    ]
    counts, _ = run(make, make.directory(*reps), ["a.sdr", "b.sdr", "c.sdr"], 600)
    assert counts == {"a.sdr": 100, "b.sdr": 200, "c.sdr": 300}


def test_smooth_interleaving_not_bursts(make):
    reps = [make.person("a.sdr", Role.SDR, weight=1), make.person("b.sdr", Role.SDR, weight=2)]
    directory = make.directory(*reps)
    state, order = RoundRobinState(), []
    for _ in range(6):
        result = pick(
            pool="p",
            members=["a.sdr", "b.sdr"],
            directory=directory,
            state=state,
            open_handoffs={},
            now=make.now,
            enforce_working_hours=False,
        )
        order.append(result.person.id)
        state = result.state
    assert order == ["b.sdr", "a.sdr", "b.sdr", "b.sdr", "a.sdr", "b.sdr"]


def test_deterministic_and_pure(make, directory):
    state = RoundRobinState()
    first = pick(
        pool="p",
        members=["dan.sdr", "eve.sdr"],
        directory=directory,
        state=state,
        open_handoffs={},
        now=make.now,
        enforce_working_hours=False,
    )
    second = pick(
        pool="p",
        members=["dan.sdr", "eve.sdr"],
        directory=directory,
        state=state,
        open_handoffs={},
        now=make.now,
        enforce_working_hours=False,
    )
    assert first == second
    assert state == RoundRobinState()  # the input state is untouched


def test_state_round_trips_through_json(make, directory):
    _, state = run(make, directory, ["dan.sdr", "eve.sdr", "finn.sdr"], 5)
    assert RoundRobinState.model_validate_json(state.model_dump_json()) == state


def test_capacity_skips_full_reps(make, directory):
    counts, _ = run(make, directory, ["dan.sdr", "eve.sdr"], 10, open_handoffs={"dan.sdr": 25})
    assert counts == {"eve.sdr": 10}


def test_out_of_office_and_inactive_are_skipped_with_reasons(make):
    away = make.person(
        "dan.sdr",
        Role.SDR,
        out_of_office=(
            Period(start=make.now - timedelta(days=1), end=make.now + timedelta(days=1)),
        ),
    )
    gone = make.person("eve.sdr", Role.SDR, active=False)
    directory = make.directory(away, gone)
    result = pick(
        pool="p",
        members=["dan.sdr", "eve.sdr", "finn.sdr"],
        directory=directory,
        state=RoundRobinState(),
        open_handoffs={},
        now=make.now,
        enforce_working_hours=False,
    )
    assert result.person.id == "finn.sdr"
    assert result.skipped == {"dan.sdr": "out of office", "eve.sdr": "inactive"}


def test_working_hours_only_when_enforced(make, directory):
    # 07:00 in Los Angeles: Finn has not started; Dan (New York, 10:00) has.
    members = ["finn.sdr", "dan.sdr"]
    enforced, _ = run(make, directory, members, 4, enforce=True)
    relaxed, _ = run(make, directory, members, 3, enforce=False)
    assert enforced == {"dan.sdr": 4}
    assert relaxed["finn.sdr"] == 2  # weight 2


def test_nobody_eligible_returns_none_and_unchanged_state(make, directory):
    state = RoundRobinState()
    result = pick(
        pool="p",
        members=["dan.sdr", "ghost.sdr"],
        directory=directory,
        state=state,
        open_handoffs={"dan.sdr": 99},
        now=make.now,
        enforce_working_hours=False,
    )
    assert result.person is None
    assert result.state is state
    assert "ghost.sdr: unknown person" in result.reason and "at capacity" in result.reason


def test_skipped_rep_does_not_bank_credit(make, directory):
    members = ["dan.sdr", "eve.sdr"]
    _, state = run(make, directory, members, 20, open_handoffs={"dan.sdr": 25})
    counts, _ = run(make, directory, members, 10, state=state)
    assert counts == {"dan.sdr": 5, "eve.sdr": 5}


def test_within_working_hours_uses_the_persons_zone(make):
    rep = make.person(
        "x.sdr", Role.SDR, timezone="Asia/Tokyo", working_hours=WorkingHours(days=(1, 2, 3, 4, 5))
    )
    assert not within_working_hours(rep, make.now)  # 00:00 Wednesday in Tokyo
    assert within_working_hours(rep, make.now - timedelta(hours=10))  # 14:00 Tuesday
    assert unavailability(rep, now=make.now, open_handoffs=0, enforce_working_hours=True)
