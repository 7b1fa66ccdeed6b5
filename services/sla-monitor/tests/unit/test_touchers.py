"""Whose touch stops a clock: the assignee, the cover alerted in their place, the account team."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tandem_shared.directory import Directory, Person
from tandem_shared.events import ActivityLogged, AlertRequested, RoutingDecided, Tier
from tandem_sla_monitor.domain.clock import (
    ClockStatus,
    SlaClock,
    fire,
    record_activity,
    start_clock,
    touchers,
    with_cover,
)
from tandem_sla_monitor.domain.policy import (
    ALL_TOUCHERS,
    PolicyError,
    SlaPolicy,
    Toucher,
    parse_policy,
)

DecisionFactory = Callable[..., RoutingDecided]
ActivityFactory = Callable[..., ActivityLogged]
TEN_AM = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))
FIVE_PAST = datetime(2026, 3, 2, 10, 5, tzinfo=ZoneInfo("America/New_York"))
BEN = "hs-owner-102"  # ben.ae in the CRM, ava.ae's cover below
TEAM = frozenset({"dan.sdr"})


@pytest.fixture
def people(directory: Directory) -> Directory:
    ben = directory.get("ben.ae")
    assert ben is not None
    others = tuple(p for p in directory.people if p.id != "ben.ae")
    return Directory(people=(*others, ben.model_copy(update={"crm_user_ids": (BEN,)})))


def _clock(decision: DecisionFactory, ava: Person, policy: SlaPolicy, tier: Tier) -> SlaClock:
    clock, _ = start_clock(decision(TEN_AM, tier=tier), ava, policy)
    return clock


def test_a_policy_without_touched_by_counts_everyone_in_every_tier() -> None:
    policy = SlaPolicy(version="v")
    assert all(
        policy.terms_for(t, s).touched_by == ALL_TOUCHERS for t in Tier for s in policy.targets
    )


def test_touched_by_is_read_per_tier_from_yaml() -> None:
    policy = parse_policy("version: v\ntouched_by:\n  1: [assignee, cover]\n  3: [assignee]\n")
    tiers = {t: policy.terms_for(t, "meeting_request").touched_by for t in Tier}  # type: ignore[arg-type]
    assert tiers == {
        Tier.T1: (Toucher.ASSIGNEE, Toucher.COVER),
        Tier.T2: ALL_TOUCHERS,
        Tier.T3: (Toucher.ASSIGNEE,),
    }


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            "touched_by:\n  1: [cover]\n",
            "touched_by: Value error, tier 1: the assignee's own touch must count",
        ),
        (
            "touched_by:\n  1: [assignee, manager]\n",
            "touched_by.1.1: Input should be 'assignee', 'cover' or 'account_team'",
        ),
        ("touched_by:\n  4: [assignee]\n", "touched_by.4.[key]: Input should be '1', '2' or '3'"),
    ],
)
def test_bad_touched_by_is_refused_with_its_path(document: str, problem: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy("version: v\n" + document)
    assert problem in str(raised.value)


def test_a_cover_alerted_in_the_assignees_place_is_remembered_once(
    decision: DecisionFactory, ava: Person, policy: SlaPolicy
) -> None:
    clock = _clock(decision, ava, policy, Tier.T1)
    covered = with_cover(clock, cover_id="ben.ae", on_behalf_of="ava.ae")
    assert covered.cover_ids == ("ben.ae",)
    assert with_cover(covered, cover_id="ben.ae", on_behalf_of="ava.ae") is covered
    # Sent on behalf of someone who no longer has the handoff: not a cover of this clock.
    assert with_cover(clock, cover_id="ben.ae", on_behalf_of="chloe.ae") is clock


@pytest.mark.parametrize(
    ("touched_by", "expected"),
    [
        ("[assignee, cover, account_team]", {"ava.ae", "ben.ae", "dan.sdr"}),
        ("[assignee, cover]", {"ava.ae", "ben.ae"}),
        ("[assignee, account_team]", {"ava.ae", "dan.sdr"}),
        ("[assignee]", {"ava.ae"}),
    ],
)
def test_the_terms_say_who_counts(
    decision: DecisionFactory, ava: Person, touched_by: str, expected: set[str]
) -> None:
    policy = parse_policy(f"version: v\ntouched_by:\n  1: {touched_by}\n")
    clock = with_cover(
        _clock(decision, ava, policy, Tier.T1), cover_id="ben.ae", on_behalf_of="ava.ae"
    )
    assert touchers(clock, team_ids=TEAM) == expected


@pytest.mark.parametrize(("tier", "counts"), [(Tier.T1, True), (Tier.T3, False)])
def test_a_covers_call_stops_the_clock_where_the_policy_says_so(
    decision: DecisionFactory,
    ava: Person,
    people: Directory,
    activity: ActivityFactory,
    tier: Tier,
    counts: bool,
) -> None:
    policy = parse_policy("version: v\ntouched_by:\n  3: [assignee, account_team]\n")
    clock = with_cover(
        _clock(decision, ava, policy, tier), cover_id="ben.ae", on_behalf_of="ava.ae"
    )

    after, emitted = record_activity(
        clock, activity(FIVE_PAST, actor_id=BEN), team_ids=TEAM, directory=people
    )

    assert (after.status is ClockStatus.MET) is counts and bool(emitted) is counts
    # Someone's cover who was never alerted for this handoff does not count.
    uncovered = _clock(decision, ava, policy, tier)
    untouched, _ = record_activity(
        uncovered, activity(FIVE_PAST, actor_id=BEN), team_ids=TEAM, directory=people
    )
    assert untouched.status is ClockStatus.RUNNING


def test_sla_alerts_link_to_the_handoffs_crm_record(
    decision: DecisionFactory, ava: Person, policy: SlaPolicy, directory: Directory
) -> None:
    routed = decision(TEN_AM).model_copy(
        update={"crm_url": "https://app.hubspot.com/contacts/1/record/0-1/5"}
    )
    clock, _ = start_clock(routed, ava, policy)
    _, emitted = fire(
        clock, datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("America/New_York")), directory
    )
    alerts = [e.payload for e in emitted if isinstance(e.payload, AlertRequested)]
    assert len(alerts) >= 2  # the warning and the breach
    assert {a.crm_url for a in alerts} == {"https://app.hubspot.com/contacts/1/record/0-1/5"}
