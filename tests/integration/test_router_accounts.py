"""The router over the real broker and database: CRM accounts and leads, matching, ownership.

Where tier, owners and TAL membership come from (CRM account events as well as the TAL workflow),
how a lead finds its account (alias domain, company name, or nowhere), who wins when sources
disagree, and the one-alert-per-cool-down rule, each through the topics the services share.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from test_router_support import Router, at, engagement, listed, new_schema, running_router

from tandem_router.config import load_config
from tandem_shared import topics
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AccountUpserted,
    AlertKind,
    AlertRequested,
    ContactUpserted,
    CrmSystem,
    EngagementKind,
    EventType,
    RoutingConflict,
    Signal,
    Tier,
)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def router(infra: Any) -> AsyncIterator[Router]:
    """One router replica over the example configuration, in a schema of its own."""
    settings = infra.settings()
    schema = await new_schema(settings)
    group = f"router-accounts-{uuid.uuid4().hex[:8]}"
    config = load_config(settings.config_dir)
    async with running_router(infra, config, schema=schema, group=group, replicas=1) as running:
        yield running


def crm_event(
    model: type[AccountUpserted | ContactUpserted],
    type: EventType,
    subject: str,
    *,
    when: datetime,
    **fields: Any,
) -> Envelope:
    payload = model(crm=CrmSystem.HUBSPOT, occurred_at=when, **fields)
    return Envelope.wrap(payload, type=type, source="/test", subject=subject, time=when)


def crm_account(key: str, **fields: Any) -> Envelope:
    return crm_event(
        AccountUpserted,
        EventType.ACCOUNT_UPSERTED,
        key,
        when=at(30),
        crm_id=f"hs-{key}",
        account_key=key,
        domain=key,
        **fields,
    )


def crm_lead(subject: str, *, email: str, **fields: Any) -> Envelope:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    return crm_event(
        ContactUpserted,
        EventType.LEAD_UPSERTED,
        subject,
        when=at(1),
        crm_id=lead_id,
        is_lead=True,
        email=email,
        **fields,
    )


def alerts_of(router: Router, key: str, kind: AlertKind) -> list[AlertRequested]:
    envelopes = router.outputs.of(key, EventType.ALERT_REQUESTED)
    return [a for e in envelopes if (a := e.payload(AlertRequested)).kind == kind]


async def test_crm_account_event_gives_tier_owner_and_tal_and_beats_the_lead_owner(
    router: Router, unique: str
) -> None:
    key = f"crmco-{unique}.com"
    await router.send(
        topics.CRM,
        crm_account(key, name="CRM Co", tier=Tier.T1, owner_id="hs-owner-101", target_account=True),
    )
    state = await router.account(key, lambda s: s.in_tal and s.tier == Tier.T1)
    assert state.crm.ae_id == "hs-owner-101" and not state.tal.ae_id  # nothing from the TAL
    # a new CRM lead owned by Ben: the account's owner (Ava, from the CRM) takes it
    await router.send(topics.CRM, crm_lead(key, email=f"kim@{key}", owner_id="hs-owner-102"))
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.tier, routing.signal) == (
        "ava.ae",
        Tier.T1,
        Signal.INBOUND_LEAD,
    )
    assert routing.in_tal and routing.match.method == "domain"
    assert any("account owner wins over lead owner ben.ae" in line for line in routing.explanation)
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF, AlertKind.MARKETING_FYI})
    assert alerts[AlertKind.MARKETING_FYI].channel_ids == ["abm-marketing"]


async def test_owner_conflict_is_escalated_instead_of_a_silent_pick(
    router: Router, unique: str
) -> None:
    key = f"dispute-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae", marketer_id="mia.marketing")
    await router.send(topics.CRM, crm_account(key, owner_id="hs-owner-102"))  # the CRM says Ben

    def conflicts() -> list[RoutingConflict]:
        found = router.outputs.of(key, EventType.ROUTING_CONFLICT)
        return sorted((e.payload(RoutingConflict) for e in found), key=lambda c: c.handoff_id or "")

    await router.outputs.wait(lambda: len(conflicts()) == 1)
    [raised] = conflicts()
    assert raised.candidates == {"crm": "ben.ae", "tal": "ava.ae"} and raised.handoff_id is None
    await router.outputs.wait(lambda: len(alerts_of(router, key, AlertKind.ROUTING_CONFLICT)) == 1)
    assert alerts_of(router, key, AlertKind.ROUTING_CONFLICT)[0].recipient_ids == ["sam.manager"]

    # a meeting request now goes to the managers, not to either AE
    await router.meeting(key)
    await router.outputs.wait(lambda: len(conflicts()) == 2)
    handoff_conflict = next(c for c in conflicts() if c.handoff_id is not None)
    assert handoff_conflict.candidates == {"crm": "ben.ae", "tal": "ava.ae"}
    alerts = await router.outputs.alerts(key, {AlertKind.MARKETING_FYI})
    assert alerts[AlertKind.MARKETING_FYI].recipient_ids == ["mia.marketing"]
    assert "escalated" in alerts[AlertKind.MARKETING_FYI].title
    escalations = alerts_of(router, key, AlertKind.ROUTING_CONFLICT)
    assert any(a.urgency == "urgent" for a in escalations)
    assert router.outputs.of(key, EventType.ROUTING_DECIDED) == []


async def test_unmatched_lead_takes_the_tier3_round_robin(router: Router, unique: str) -> None:
    subject = f"lead-{unique}"
    # a personal mailbox and no company: no account to match, so the standard process applies
    await router.send(topics.CRM, crm_lead(subject, email=f"pat.{unique}@gmail.com"))
    [routing] = await router.outputs.decision(subject)
    assert routing.account_key is None and routing.tier == Tier.T3
    assert routing.match.method == "none" and routing.signal == Signal.INBOUND_LEAD
    assert routing.assignee_id in {"dan.sdr", "eve.sdr", "finn.sdr"}
    assert any("round robin in pool all-sdrs" in line for line in routing.explanation)
    alerts = await router.outputs.alerts(subject, {AlertKind.HANDOFF, AlertKind.MARKETING_FYI})
    assert alerts[AlertKind.HANDOFF].context.research_summary.startswith("Unmatched lead")


async def test_personal_mail_lead_matches_by_company_name_above_the_threshold(
    router: Router, unique: str
) -> None:
    key = f"quill-{unique}.com"
    await listed(router, key, Tier.T1, name=f"Quillfeather {unique} Laboratories", ae_id="ava.ae")
    lead = crm_lead(
        key, email=f"ro.{unique}@gmail.com", company_name=f"Quilfeather {unique} Laboratories Inc"
    )
    await router.send(topics.CRM, lead)
    [routing] = await router.outputs.decision(key)
    assert routing.account_key == key and routing.assignee_id == "ava.ae"
    assert routing.match.method == "fuzzy_name"
    assert 0.9 <= routing.match.score < 1.0  # the example threshold, and not an exact name
    assert any(line.startswith("match: fuzzy_name (score 0.9") for line in routing.explanation)


async def test_alias_domain_from_the_crm_matches_the_account(router: Router, unique: str) -> None:
    key = f"parent-{unique}.com"
    alias = f"parent-{unique}.co.uk"
    await listed(router, key, Tier.T2, sdr_id="eve.sdr", ae_id="chloe.ae")
    await router.send(topics.CRM, crm_account(key, alias_domains=[f"www.{alias}"]))
    await router.account(key, lambda s: alias in s.alias_domains)
    meeting = engagement(key, EngagementKind.MEETING_REQUEST, email=f"al@mail.{alias}", keyed=False)
    await router.send(topics.ENGAGEMENT, meeting)
    [routing] = await router.outputs.decision(key)
    assert (routing.match.method, routing.match.matched_value) == ("alias_domain", alias)
    assert (routing.assignee_id, routing.tier, routing.notified_ids) == (
        "eve.sdr",
        Tier.T2,
        ["chloe.ae"],
    )


async def test_one_alert_per_signal_per_cooldown(router: Router, unique: str) -> None:
    key = f"cool-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    # two meeting requests within the hour's cool-down of routing.yaml, then one after it
    first, second, later = (
        engagement(key, EngagementKind.MEETING_REQUEST, email=f"jo@{key}", when=at(minutes))
        for minutes in (130, 100, 30)
    )
    await router.send(topics.ENGAGEMENT, first, second)
    await router.account(key, lambda s: len(s.engagements) == 2)
    await asyncio.sleep(0.5)  # room for a second decision to show up
    assert [r.decided_at for r in await router.outputs.decision(key)] == [first.time]
    assert len(alerts_of(router, key, AlertKind.HANDOFF)) == 1
    await router.send(topics.ENGAGEMENT, later)
    decisions = await router.outputs.decision(key, count=2)
    assert [r.decided_at for r in decisions] == [first.time, later.time]
    assert len(alerts_of(router, key, AlertKind.HANDOFF)) == 2


async def test_a_redelivered_event_is_decided_once(router: Router, unique: str) -> None:
    key = f"again-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    meeting = engagement(key, EngagementKind.MEETING_REQUEST, email=f"jo@{key}")
    await router.send(topics.ENGAGEMENT, meeting)
    await router.outputs.decision(key)
    await router.send(topics.ENGAGEMENT, meeting)  # the same event id again, as a retry would
    marker = engagement(key, EngagementKind.PAGE_VIEW, email=f"jo@{key}")
    await router.send(topics.ENGAGEMENT, marker)  # same partition: handled after the retry
    state = await router.account(key, lambda s: len(s.engagements) == 2)
    assert len(state.handoffs) == 1 and router.handled[0][meeting.id] == 1
    assert router.handled[0][marker.id] == 1


async def test_tier2_without_an_account_sdr_takes_the_territory_pool(
    router: Router, unique: str
) -> None:
    key = f"nosdr-{unique}.fr"
    await listed(router, key, Tier.T2, ae_id="chloe.ae", territory="emea")
    await router.meeting(key, contact="li")
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.tier, routing.notified_ids) == (
        "eve.sdr",
        Tier.T2,
        ["chloe.ae"],
    )
    assert "no account SDR" in routing.explanation
    assert any("round robin in pool emea-sdrs" in line for line in routing.explanation)
