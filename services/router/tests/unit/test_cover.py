from __future__ import annotations

from datetime import timedelta

from tandem_router.domain.cover import away_until
from tandem_router.domain.decide import decide
from tandem_router.domain.matching import AccountIndex, AccountRef, locate_account
from tandem_router.domain.model import Assignment, RoundRobinState
from tandem_router.domain.ownership import resolve_ownership
from tandem_router.domain.routing import Roster, route_handoff
from tandem_shared.directory import Period, Role
from tandem_shared.events import AlertKind, EngagementKind, Tier


def away(make, person_id, role=Role.AE, *, days=2, **fields):
    """A person out of office from an hour ago for `days` days."""
    period = Period(start=make.now - timedelta(hours=1), end=make.now + timedelta(days=days))
    return make.person(person_id, role, out_of_office=(period,), **fields)


def route(make, *people, tier=Tier.T1, rules=None, open_handoffs=None, state=None, exclude=()):
    directory = make.directory(*people)
    rules = rules or make.rules()
    state = state or make.acme()
    ownership = resolve_ownership(
        state=state, lead_owner_id=None, directory=directory, rules=rules.ownership
    )
    roster = Roster(directory, RoundRobinState(), open_handoffs or {}, make.now)
    return route_handoff(
        tier=tier,
        territory=state.territory,
        ownership=ownership,
        rules=rules,
        roster=roster,
        exclude=exclude,
    )


def globex(make):
    """A tier 2 account of Ava (AE) and Dan (SDR)."""
    tal = Assignment(ae_id="ava.ae", sdr_id="dan.sdr", tier=Tier.T2, territory="na-east")
    return make.acme(tier=Tier.T2, tal=tal)


def test_tier1_goes_to_the_cover_of_an_out_of_office_ae(make):
    result = route(make, away(make, "ava.ae", cover_id="ben.ae"))
    assert result.assignee.id == "ben.ae"
    assert result.explanation == (
        "ava.ae owns the account as its AE",
        "ava.ae is out of office until 2026-11-26 15:00 UTC; handed to cover ben.ae",
    )


def test_tier1_in_office_ae_is_unchanged(make):
    ava = make.person("ava.ae", Role.AE, cover_id="ben.ae", territories=("na-east",))
    result = route(make, ava)
    assert result.assignee.id == "ava.ae"
    assert result.explanation == ("ava.ae owns the account as its AE",)


def test_tier1_cover_also_out_falls_back_to_the_account_sdr(make):
    result = route(make, away(make, "ava.ae", cover_id="ben.ae"), away(make, "ben.ae", days=1))
    assert result.assignee.id == "dan.sdr"
    assert result.explanation[1] == (
        "ava.ae is out of office until 2026-11-26 15:00 UTC and cover ben.ae is out of office "
        "until 2026-11-25 15:00 UTC: falling back to the SDR path"
    )
    assert result.explanation[-1] == "dan.sdr is the account's SDR"


def test_tier1_cover_at_capacity_or_missing_falls_back(make):
    full = route(make, away(make, "ava.ae", cover_id="ben.ae"), open_handoffs={"ben.ae": 20})
    assert full.assignee.id == "dan.sdr"
    assert "cover ben.ae is at capacity (20/20 open handoffs)" in full.explanation[1]
    # no cover and no account SDR: the territory pool, by the existing SDR path
    state = make.acme(tal=Assignment(ae_id="ava.ae", tier=Tier.T1, territory="na-east"))
    none = route(make, away(make, "ava.ae"), state=state)
    assert none.assignee.id == "dan.sdr"
    assert "ava.ae has no cover: falling back to the SDR path" in none.explanation[1]
    assert "no account SDR" in none.explanation
    assert "round robin in pool na-sdrs" in none.explanation[-1]


def test_a_cover_outside_sales_is_not_handed_the_meeting(make):
    result = route(make, away(make, "ava.ae", cover_id="mia.marketing"))
    assert result.assignee.id == "dan.sdr"
    assert "cover mia.marketing is not in sales (marketer)" in result.explanation[1]


def test_the_setting_off_keeps_the_handoff_with_the_away_ae(make):
    rules = make.rules(out_of_office_cover=False)
    result = route(make, away(make, "ava.ae", cover_id="ben.ae"), rules=rules)
    assert result.assignee.id == "ava.ae"


def test_the_cover_rule_is_on_unless_the_rule_set_says_otherwise(make):
    assert "out_of_office_cover" not in make.rules_doc() and make.rules().out_of_office_cover


def test_reassigning_from_the_cover_skips_it(make):
    ava = away(make, "ava.ae", cover_id="ben.ae")
    result = route(make, ava, exclude=("ben.ae",))
    assert result.assignee.id == "dan.sdr"
    assert "cover ben.ae is excluded (previous assignee)" in result.explanation[1]


def test_an_ae_handing_a_tier1_handoff_on_passes_it_to_their_cover(make):
    ava = make.person("ava.ae", Role.AE, cover_id="ben.ae", territories=("na-east",))
    result = route(make, ava, exclude=("ava.ae",))
    assert result.assignee.id == "ben.ae"
    assert result.explanation == (
        "ava.ae owns the account as its AE",
        "ava.ae asked to hand it on; handed to cover ben.ae",
    )


def test_an_ae_handing_it_on_without_an_available_cover_goes_the_sdr_path(make):
    ava = make.person("ava.ae", Role.AE, cover_id="ben.ae", territories=("na-east",))
    full = route(make, ava, exclude=("ava.ae",), open_handoffs={"ben.ae": 20})
    assert full.assignee.id == "dan.sdr"
    assert full.explanation[1] == (
        "ava.ae asked to hand it on and cover ben.ae is at capacity (20/20 open handoffs): "
        "falling back to the SDR path"
    )
    alone = make.person("ava.ae", Role.AE, territories=("na-east",))
    none = route(make, alone, exclude=("ava.ae",))
    assert none.assignee.id == "dan.sdr"
    assert "ava.ae asked to hand it on and ava.ae has no cover" in none.explanation[1]


def test_tier2_fyi_goes_to_the_cover_of_an_out_of_office_ae(make):
    result = route(make, away(make, "ava.ae", cover_id="ben.ae"), tier=Tier.T2, state=globex(make))
    assert result.assignee.id == "dan.sdr"
    assert [p.id for p in result.fyi] == ["ben.ae"]
    assert result.explanation[-1] == (
        "ava.ae is out of office until 2026-11-26 15:00 UTC; FYI to cover ben.ae"
    )


def test_tier2_fyi_is_dropped_when_the_cover_is_away_too(make):
    people = (away(make, "ava.ae", cover_id="ben.ae"), away(make, "ben.ae"))
    result = route(make, *people, tier=Tier.T2, state=globex(make))
    assert result.assignee.id == "dan.sdr" and result.fyi == ()
    assert result.explanation[-1].endswith("no AE FYI (dan.sdr has the handoff)")


def test_tier2_fyi_is_not_doubled_when_the_cover_took_the_handoff(make):
    people = (away(make, "ava.ae", cover_id="dan.sdr"),)
    result = route(make, *people, tier=Tier.T2, state=globex(make))
    assert result.assignee.id == "dan.sdr" and result.fyi == ()
    assert result.explanation[-1].endswith("cover dan.sdr already has the handoff")


def test_back_to_back_absences_report_the_return(make):
    first = Period(start=make.now - timedelta(days=1), end=make.now + timedelta(days=1))
    second = Period(start=make.now + timedelta(days=1), end=make.now + timedelta(days=4))
    later = Period(start=make.now + timedelta(days=9), end=make.now + timedelta(days=10))
    ava = make.person("ava.ae", Role.AE, out_of_office=(later, second, first))
    assert away_until(ava, make.now) == second.end
    assert away_until(ava, make.now + timedelta(days=5)) is None


def test_decision_alerts_the_cover_and_records_it(make):
    directory = make.directory(away(make, "ava.ae", cover_id="ben.ae"))
    meeting = make.engagement(EngagementKind.MEETING_REQUEST)
    index = AccountIndex.build([AccountRef.of(make.acme())])
    decision = decide(
        event_id="evt-1",
        event=meeting,
        match=locate_account(meeting, index, fuzzy_threshold=0.9),
        state=make.acme(),
        directory=directory,
        round_robin=RoundRobinState(),
        open_handoffs={},
        rules=make.rules(),
        now=make.now,
    )
    assert decision.routing.assignee_id == "ben.ae"
    assert (
        "ava.ae is out of office until 2026-11-26 15:00 UTC; handed to cover ben.ae"
        in decision.routing.explanation
    )
    [handoff] = [a for a in decision.alerts if a.kind == AlertKind.HANDOFF]
    assert handoff.recipient_ids == ["ben.ae"]
    assert decision.state.handoff(decision.routing.handoff_id).assignee_id == "ben.ae"
