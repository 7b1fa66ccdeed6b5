from __future__ import annotations

from datetime import timedelta

import pytest

from tandem_router.domain.decide import Decision, decide, may_hand_off
from tandem_router.domain.matching import AccountIndex, AccountRef, locate_account
from tandem_router.domain.model import AccountState, Assignment, RoundRobinState
from tandem_shared.directory import Period, Role
from tandem_shared.events import (
    AccountUpserted,
    AlertKind,
    CrmSystem,
    EngagementKind,
    HandoffReassignRequested,
    Signal,
    Tier,
    Urgency,
)


@pytest.fixture
def accounts(make) -> dict[str, AccountState]:
    def listed(key, name, tier, territory, **team):
        tal = Assignment(tier=tier, territory=territory, **team)
        return AccountState(
            account_key=key, name=name, tier=tier, in_tal=True, territory=territory, tal=tal
        )

    states = [
        make.acme(),
        listed(
            "globex.com",
            "Globex",
            Tier.T2,
            "na-central",
            ae_id="ben.ae",
            sdr_id="dan.sdr",
            marketer_id="mia.marketing",
        ),
        listed(
            "initech.fr",
            "Initech France",
            Tier.T2,
            "emea",
            ae_id="chloe.ae",
            marketer_id="mia.marketing",
        ),
        listed("hooli.com", "Hooli", Tier.T3, "na-west"),
    ]
    return {s.account_key: s for s in states}


def run(
    make,
    accounts,
    event,
    *,
    event_id="evt-1",
    directory=None,
    rules=None,
    round_robin=None,
    open_handoffs=None,
    state=None,
) -> Decision:
    rules = rules or make.rules()
    index = AccountIndex.build(AccountRef.of(s) for s in accounts.values())
    match = locate_account(event, index, fuzzy_threshold=rules.fuzzy_threshold)
    if state is None and match.account_key:
        state = accounts.get(match.account_key)
    return decide(
        event_id=event_id,
        event=event,
        match=match,
        state=state,
        directory=directory or make.directory(),
        round_robin=round_robin or RoundRobinState(),
        open_handoffs=open_handoffs or {},
        rules=rules,
        now=make.now,
    )


def alerts_by_kind(decision):
    return {a.kind: a for a in decision.alerts}


def meeting(make, email="jo@acme.com", **kw):
    return make.engagement(EngagementKind.MEETING_REQUEST, email=email, account_key=None, **kw)


def test_tier1_goes_to_the_account_ae_with_a_full_trail(make, accounts):
    decision = run(make, accounts, meeting(make, "jo@acme.io"))
    routing = decision.routing
    assert (routing.assignee_id, routing.assignee_role, routing.tier, routing.signal) == (
        "ava.ae",
        "ae",
        Tier.T1,
        Signal.MEETING_REQUEST,
    )
    assert routing.in_tal and routing.contact_email == "jo@acme.io"
    assert routing.match.method == "alias_domain" and routing.rule_set_version == "2026-11-23.1"
    trail = "\n".join(routing.explanation)
    for expected in (
        "rule set 2026-11-23.1",
        "match: alias_domain (score 1.00)",
        "signal: meeting_request",
        "rule: tier 1 -> the account AE",
        "ava.ae owns the account",
    ):
        assert expected in trail
    alerts = alerts_by_kind(decision)
    assert set(alerts) == {AlertKind.HANDOFF, AlertKind.MARKETING_FYI}
    assert alerts[AlertKind.HANDOFF].recipient_ids == ["ava.ae"]
    assert alerts[AlertKind.HANDOFF].urgency == Urgency.URGENT
    assert alerts[AlertKind.MARKETING_FYI].recipient_ids == ["mia.marketing"]
    assert routing.notified_ids == ["mia.marketing"]
    assert decision.state.last_alerts[Signal.MEETING_REQUEST] == make.now
    assert decision.state.handoff(routing.handoff_id).assignee_id == "ava.ae"
    assert decision.state.engagements[-1].kind == EngagementKind.MEETING_REQUEST
    assert routing.context.research_summary.startswith("Acme Corporation")


def test_ids_are_deterministic_from_the_event_id(make, accounts):
    first = run(make, accounts, meeting(make))
    again = run(make, accounts, meeting(make))
    other = run(make, accounts, meeting(make), event_id="evt-2")
    assert first == again
    assert first.routing.decision_id != other.routing.decision_id
    assert first.routing.handoff_id != other.routing.handoff_id
    ids = [a.alert_id for a in first.alerts]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & {a.alert_id for a in other.alerts}


def test_tier2_goes_to_the_account_sdr_with_an_fyi_to_the_ae(make, accounts):
    decision = run(make, accounts, meeting(make, "kim@globex.com"))
    assert (decision.routing.assignee_id, decision.routing.assignee_role) == ("dan.sdr", "sdr")
    alerts = alerts_by_kind(decision)
    assert alerts[AlertKind.HANDOFF].recipient_ids == ["dan.sdr"]
    assert alerts[AlertKind.HANDOFF_FYI].recipient_ids == ["ben.ae"]
    assert alerts[AlertKind.HANDOFF_FYI].urgency == Urgency.LOW
    assert decision.routing.notified_ids == ["ben.ae", "mia.marketing"]


def test_tier2_without_an_available_sdr_uses_the_territory_pool(make, accounts):
    decision = run(make, accounts, meeting(make, "kim@initech.fr"))
    assert decision.routing.assignee_id == "eve.sdr"
    assert any("no account SDR" in line for line in decision.routing.explanation)
    assert decision.round_robin.pool("emea-sdrs").assigned == {"eve.sdr": 1}
    assert alerts_by_kind(decision)[AlertKind.HANDOFF_FYI].recipient_ids == ["chloe.ae"]


def test_tier2_sdr_out_of_office_falls_back_to_the_default_pool(make, accounts):
    away = make.person(
        "dan.sdr",
        Role.SDR,
        out_of_office=(
            Period(start=make.now - timedelta(hours=1), end=make.now + timedelta(days=2)),
        ),
    )
    decision = run(make, accounts, meeting(make, "kim@globex.com"), directory=make.directory(away))
    assert decision.routing.assignee_id in {"eve.sdr", "finn.sdr"}
    trail = "\n".join(decision.routing.explanation)
    assert "account SDR dan.sdr is out of office" in trail
    assert "no eligible rep in pool na-sdrs" in trail and "pool all-sdrs" in trail


def test_tier3_is_round_robin_and_marketing_goes_to_the_channel(make, accounts):
    decision = run(make, accounts, make.lead("cto@hooli.com"))
    assert (
        decision.routing.assignee_id == "finn.sdr"
        and decision.routing.signal == Signal.INBOUND_LEAD
    )
    assert "round robin in pool na-west-sdrs" in "\n".join(decision.routing.explanation)
    marketing = alerts_by_kind(decision)[AlertKind.MARKETING_FYI]
    assert marketing.recipient_ids == [] and marketing.channel_ids == ["abm-marketing"]
    assert AlertKind.HANDOFF_FYI not in alerts_by_kind(decision)


def test_unmatched_leads_go_through_the_tier3_process(make, accounts):
    rr = RoundRobinState()
    for i in range(8):
        decision = run(
            make, accounts, make.lead(f"person{i}@gmail.com"), event_id=f"e{i}", round_robin=rr
        )
        assert decision.state is None
        assert decision.routing.account_key is None and decision.routing.tier == Tier.T3
        assert decision.routing.match.method == "none"
        rr = decision.round_robin
    # the default pool, by weight: Finn counts double
    assert rr.pool("all-sdrs").assigned == {"dan.sdr": 2, "eve.sdr": 2, "finn.sdr": 4}


def test_new_business_domain_becomes_a_tier3_account(make, accounts):
    decision = run(make, accounts, make.lead("cfo@newco.io"))
    assert decision.state.account_key == "newco.io" and decision.state.tier == Tier.T3
    assert decision.routing.account_key == "newco.io"
    assert decision.state.known_contacts == ("cfo@newco.io",)


def test_ownership_conflict_escalates_instead_of_picking(make, accounts):
    accounts["acme.com"] = make.acme(crm=Assignment(ae_id="hs-owner-102"))
    decision = run(make, accounts, meeting(make))
    assert decision.routing is None
    [conflict] = decision.conflicts
    assert conflict.candidates == {"crm": "ben.ae", "tal": "ava.ae"}
    assert conflict.account_key == "acme.com" and conflict.rule_set_version == "2026-11-23.1"
    alerts = alerts_by_kind(decision)
    assert alerts[AlertKind.ROUTING_CONFLICT].recipient_ids == ["sam.manager"]
    assert alerts[AlertKind.ROUTING_CONFLICT].urgency == Urgency.URGENT
    assert "escalated" in alerts[AlertKind.MARKETING_FYI].title
    assert AlertKind.HANDOFF not in alerts
    assert decision.state.handoff(conflict.handoff_id).assignee_id is None
    assert Signal.MEETING_REQUEST in decision.state.last_alerts


def test_tier2_ae_conflict_still_routes_to_the_sdr_and_escalates(make, accounts):
    globex = accounts["globex.com"]
    accounts["globex.com"] = globex.model_copy(update={"crm": Assignment(ae_id="hs-owner-101")})
    decision = run(make, accounts, meeting(make, "kim@globex.com"))
    assert decision.routing.assignee_id == "dan.sdr"
    assert [c.candidates for c in decision.conflicts] == [{"crm": "ava.ae", "tal": "ben.ae"}]
    assert AlertKind.HANDOFF_FYI not in alerts_by_kind(decision)


def test_crm_change_that_creates_a_conflict_is_raised_at_once(make, accounts):
    change = AccountUpserted(
        crm=CrmSystem.HUBSPOT,
        crm_id="hs-acme-1",
        account_key="acme.com",
        owner_id="hs-owner-103",
        occurred_at=make.now,
    )
    decision = run(make, accounts, change)
    assert decision.routing is None
    [conflict] = decision.conflicts
    assert conflict.candidates == {"crm": "chloe.ae", "tal": "ava.ae"}
    [alert] = decision.alerts
    assert alert.kind == AlertKind.ROUTING_CONFLICT and alert.signal is None
    assert decision.state.crm.ae_id == "hs-owner-103"
    # the same change again is not news
    again = run(make, {"acme.com": decision.state}, change, event_id="evt-2")
    assert again.conflicts == () and again.alerts == ()


def test_nobody_available_is_escalated(make, accounts):
    full = {"dan.sdr": 25, "eve.sdr": 25, "finn.sdr": 20}
    decision = run(make, accounts, make.lead("cto@hooli.com"), open_handoffs=full)
    assert decision.routing is None
    [conflict] = decision.conflicts
    assert conflict.reason.startswith("no one can take the handoff")
    assert alerts_by_kind(decision)[AlertKind.ROUTING_CONFLICT].recipient_ids == ["sam.manager"]


def test_tier1_without_an_ae_falls_back_to_the_sdr_path(make, accounts):
    accounts["acme.com"] = make.acme(
        tal=Assignment(sdr_id="dan.sdr", tier=Tier.T1), crm=Assignment(), territory="apac"
    )
    decision = run(make, accounts, meeting(make))
    assert decision.routing.assignee_id == "dan.sdr"
    assert "no AE owns the account: falling back to the SDR path" in decision.routing.explanation


def test_events_without_a_signal_only_update_state(make, accounts):
    decision = run(make, accounts, make.engagement(email="jo@acme.com", account_key=None))
    assert (decision.routing, decision.conflicts, decision.alerts) == (None, (), ())
    assert decision.state.engagements[-1].engagement_id == "eng-1"


def test_cooldown_suppresses_a_second_handoff(make, accounts):
    first = run(make, accounts, meeting(make))
    accounts["acme.com"] = first.state
    second = run(make, accounts, meeting(make, engagement_id="eng-2"), event_id="evt-2")
    assert second.routing is None and second.alerts == ()
    assert [d.signal for d in second.signals.suppressed] == [Signal.MEETING_REQUEST]


def test_reassignment_skips_the_previous_assignee_and_keeps_the_handoff(make, accounts):
    first = run(make, accounts, meeting(make, "kim@globex.com"))
    accounts["globex.com"] = first.state
    request = HandoffReassignRequested(
        handoff_id=first.routing.handoff_id,
        account_key="globex.com",
        previous_assignee_id="dan.sdr",
        reason="on a deal desk week",
        requested_at=make.now,
    )
    decision = run(make, accounts, request, event_id="evt-2", round_robin=first.round_robin)
    assert decision.routing.handoff_id == first.routing.handoff_id
    assert decision.routing.decision_id != first.routing.decision_id
    assert decision.routing.assignee_id in {"eve.sdr", "finn.sdr"}
    assert decision.routing.signal == Signal.MEETING_REQUEST
    assert "reassigned from dan.sdr: on a deal desk week" in decision.routing.explanation
    assert AlertKind.MARKETING_FYI not in alerts_by_kind(decision)
    assert (
        decision.state.handoff(first.routing.handoff_id).assignee_id == decision.routing.assignee_id
    )


def test_reassignment_of_an_unknown_handoff_is_escalated(make, accounts):
    request = HandoffReassignRequested(
        handoff_id="h-unknown",
        account_key="globex.com",
        previous_assignee_id="dan.sdr",
        reason="wrong rep",
        requested_at=make.now,
    )
    decision = run(make, accounts, request)
    assert decision.routing is None
    [conflict] = decision.conflicts
    assert "no record" in conflict.reason and conflict.handoff_id == "h-unknown"
    assert [a.kind for a in decision.alerts] == [AlertKind.ROUTING_CONFLICT]


def test_decision_payloads_serialize(make, accounts):
    decision = run(make, accounts, meeting(make))
    assert type(decision.routing).model_validate_json(decision.routing.model_dump_json()) == (
        decision.routing
    )
    for alert in decision.alerts:
        assert type(alert).model_validate_json(alert.model_dump_json()) == alert


def test_only_signals_and_reassignments_need_the_roster(make, accounts, rules):
    acme = accounts["acme.com"]
    assert may_hand_off(event=meeting(make), state=acme, rules=rules, now=make.now)
    page_view = make.engagement(EngagementKind.PAGE_VIEW)
    assert not may_hand_off(event=page_view, state=acme, rules=rules, now=make.now)
    reassign = HandoffReassignRequested(
        handoff_id="h-1",
        previous_assignee_id="ava.ae",
        reason="on leave",
        requested_at=make.now,
    )
    assert may_hand_off(event=reassign, state=None, rules=rules, now=make.now)
