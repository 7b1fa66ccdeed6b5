from __future__ import annotations

from datetime import timedelta

from tandem_router.domain.messages import stable_id
from tandem_router.domain.model import AccountState, Assignment
from tandem_router.domain.whatif import ReplayEvent, World, simulate, what_if
from tandem_shared.directory import Role
from tandem_shared.events import (
    EngagementKind,
    HandoffReassignRequested,
    Signal,
    SlaEvent,
    Tier,
)


def world(make) -> World:
    hooli = AccountState(
        account_key="hooli.com",
        name="Hooli",
        tier=Tier.T3,
        in_tal=True,
        territory="na-west",
        tal=Assignment(tier=Tier.T3, territory="na-west"),
    )
    return World(accounts={"acme.com": make.acme(), "hooli.com": hooli})


def events(make) -> list[ReplayEvent]:
    step = timedelta(hours=1)
    return [
        ReplayEvent("e1", make.lead("a@hooli.com"), make.now),
        ReplayEvent("e2", make.intent(75), make.now + step),
        ReplayEvent("e3", make.lead("b@hooli.com"), make.now + 2 * step),
        ReplayEvent("e4", make.lead("c@gmail.com"), make.now + 3 * step),
    ]


def test_identical_rule_sets_change_nothing(make, directory, rules):
    report = what_if(
        events(make), current=rules, candidate=rules, directory=directory, world=world(make)
    )
    assert report.diffs == ()
    assert report.summary.events == 4 and report.summary.changed == 0
    assert report.summary.handoffs_before == report.summary.handoffs_after == 3


def test_candidate_rules_report_what_would_change(make, directory, rules):
    doc = make.rules_doc(version="2026-11-24.1")
    doc["pools"]["na-west-sdrs"]["members"] = ["dan.sdr"]  # Finn leaves the west pool
    doc["signals"] = {"intent_surge": {"score_threshold": 80}, "inbound_lead": {"cooldown": "PT1H"}}
    candidate = make.rules(**doc)
    report = what_if(
        events(make), current=rules, candidate=candidate, directory=directory, world=world(make)
    )
    assert (report.current_version, report.candidate_version) == ("2026-11-23.1", "2026-11-24.1")
    by_event = {d.event_id: d for d in report.diffs}
    assert by_event["e1"].before.assignee_id == "finn.sdr"
    assert by_event["e1"].after.assignee_id == "dan.sdr"
    assert (
        by_event["e2"].before.signal == Signal.INTENT_SURGE and by_event["e2"].after.signal is None
    )
    # the shorter inbound-lead cool-down lets b@hooli.com through under the candidate
    assert by_event["e3"].before.assignee_id is None
    assert by_event["e3"].after.assignee_id == "dan.sdr"
    assert "e4" not in by_event
    summary = report.summary
    assert (summary.changed, summary.assignee_changed, summary.signal_changed) == (3, 3, 2)
    assert (summary.handoffs_before, summary.handoffs_after) == (3, 3)


def test_replay_is_pure_and_starts_from_the_same_world(make, directory, rules):
    start = world(make)
    first = simulate(events(make), rules=rules, directory=directory, world=start)
    second = simulate(events(make), rules=rules, directory=directory, world=start)
    assert first == second
    assert start.accounts["hooli.com"].handoffs == ()


def test_report_from_replays_earlier_events_but_compares_only_later_ones(make, directory, rules):
    doc = make.rules_doc(version="2026-11-24.1")
    doc["pools"]["na-west-sdrs"]["members"] = ["dan.sdr"]
    candidate = make.rules(**doc)
    later = make.now + timedelta(hours=1)
    report = what_if(
        events(make),
        current=rules,
        candidate=candidate,
        directory=directory,
        world=world(make),
        report_from=later,
    )
    assert report.summary.events == 3
    assert "e1" not in {d.event_id for d in report.diffs}
    # e3 is still held back by the inbound-lead cool-down that e1 started during the warm-up
    assert "e3" not in {d.event_id for d in report.diffs}


def meetings_with_finn_at_capacity(make, between: list[ReplayEvent]):
    """Replay two Hooli meetings (Finn's pool, Finn can hold one) with `between` in the middle."""
    directory = make.directory(
        make.person("finn.sdr", Role.SDR, territories=("na-west",), capacity=1)
    )
    step = timedelta(hours=2)

    def meeting(n: int):
        return make.engagement(
            EngagementKind.MEETING_REQUEST,
            email="a@hooli.com",
            account_key="hooli.com",
            engagement_id=f"m{n}",
            at=make.now + n * step,
        )

    events = [
        ReplayEvent("m0", meeting(0), make.now),
        *between,
        ReplayEvent("m1", meeting(1), make.now + step),
    ]
    return simulate(events, rules=make.rules(), directory=directory, world=world(make))


def test_replay_frees_capacity_when_the_sla_was_met(make):
    handoff = stable_id("m0", "handoff")
    met = SlaEvent(
        handoff_id=handoff, account_key="hooli.com", assignee_id="finn.sdr", tier=Tier.T3,
        signal=Signal.MEETING_REQUEST, started_at=make.now, deadline=make.now + timedelta(hours=1),
        allowed_seconds=3600, policy_version="p1", within_sla=True, occurred_at=make.now,
    )  # fmt: skip
    at = make.now + timedelta(hours=1)
    closed = meetings_with_finn_at_capacity(make, [ReplayEvent("met", met, at)])
    assert [o.assignee_id for o in closed] == ["finn.sdr", None, "finn.sdr"]
    still_open = meetings_with_finn_at_capacity(make, [])
    assert [o.assignee_id for o in still_open] == ["finn.sdr", "dan.sdr"]  # the default pool


def test_replay_moves_a_reassigned_handoff_off_the_previous_assignee(make):
    reassign = HandoffReassignRequested(
        handoff_id=stable_id("m0", "handoff"),
        account_key="hooli.com",
        previous_assignee_id="finn.sdr",
        reason="on leave",
        requested_at=make.now,
    )
    at = make.now + timedelta(hours=1)
    outcomes = meetings_with_finn_at_capacity(make, [ReplayEvent("r", reassign, at)])
    assert [o.assignee_id for o in outcomes] == ["finn.sdr", "dan.sdr", "finn.sdr"]


def test_sla_events_are_replayed_but_not_compared(make, directory, rules):
    met = SlaEvent(
        handoff_id="unknown", assignee_id="finn.sdr", tier=Tier.T3, signal=Signal.INBOUND_LEAD,
        started_at=make.now, deadline=make.now, allowed_seconds=1, policy_version="p1",
        occurred_at=make.now,
    )  # fmt: skip
    replay = [*events(make), ReplayEvent("met", met, make.now + timedelta(hours=4))]
    report = what_if(replay, current=rules, candidate=rules, directory=directory, world=world(make))
    assert report.summary.events == 4
