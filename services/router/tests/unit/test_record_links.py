"""Handoffs and their alerts link to the CRM record they are about; decisions name the team."""

from __future__ import annotations

from tandem_router.domain.apply import apply_event
from tandem_router.domain.decide import decide, record_url
from tandem_router.domain.matching import AccountIndex, AccountRef, locate_account
from tandem_router.domain.model import AccountState, RoundRobinState
from tandem_shared.events import AccountUpserted, CrmSystem, EngagementKind

ACME_HS = "https://app.hubspot.com/contacts/62515/record/0-2/9"
ACME_SF = "https://acme.lightning.force.com/lightning/r/Account/001A/view"
LEAD_HS = "https://app.hubspot.com/contacts/62515/record/0-1/501"


def _decide(make, state: AccountState, event):
    rules = make.rules()
    index = AccountIndex.build([AccountRef.of(state)])
    return decide(
        event_id="evt-1",
        event=event,
        match=locate_account(event, index, fuzzy_threshold=rules.fuzzy_threshold),
        state=state,
        directory=make.directory(),
        round_robin=RoundRobinState(),
        open_handoffs={},
        rules=rules,
        now=make.now,
    )


def test_a_meeting_request_links_every_alert_to_the_account_record(make) -> None:
    acme = make.acme(crm_urls={"hubspot": ACME_HS})
    meeting = make.engagement(EngagementKind.MEETING_REQUEST, account_key=None)

    decision = _decide(make, acme, meeting)

    assert decision.routing is not None and decision.routing.crm_url == ACME_HS
    assert decision.alerts and {a.crm_url for a in decision.alerts} == {ACME_HS}
    assert decision.routing.account_team_ids == ["ava.ae", "dan.sdr", "mia.marketing"]


def test_a_lead_links_to_its_own_record(make) -> None:
    acme = make.acme(crm_urls={"hubspot": ACME_HS})
    lead = make.lead("cto@acme.com", crm_url=LEAD_HS)

    decision = _decide(make, acme, lead)

    assert decision.routing is not None and decision.routing.crm_url == LEAD_HS


def test_account_records_keep_each_crm_page(make) -> None:
    acme = make.acme()
    sf = AccountUpserted(
        crm=CrmSystem.SALESFORCE, crm_id="001A", crm_url=ACME_SF, occurred_at=make.now
    )
    hs = AccountUpserted(crm=CrmSystem.HUBSPOT, crm_id="9", crm_url=ACME_HS, occurred_at=make.now)
    retention = make.rules().retention

    state = apply_event(
        apply_event(acme, sf, now=make.now, retention=retention),
        hs,
        now=make.now,
        retention=retention,
    )

    assert state.crm_urls == {"salesforce": ACME_SF, "hubspot": ACME_HS}
    # The record in the CRM the event came from, else any, else none.
    assert record_url(sf, state) == ACME_SF
    assert record_url(make.engagement(), state) == ACME_SF
    assert record_url(None, make.acme()) is None
