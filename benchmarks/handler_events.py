"""The events and handlers of `benchmarks.handlers`: a TAL of generated accounts and their traffic.

Every generator continues a shared sequence, so a warm-up and the measured run never repeat an
event id, and meeting requests land on distinct accounts (one burst over a large TAL).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from tandem_shared.consumer import Handler
from tandem_shared.db import session_factory
from tandem_shared.directory import Directory, load_directory
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import (
    ActivityKind,
    ActivityLogged,
    AlertKind,
    AlertRequested,
    ContactUpserted,
    CrmSystem,
    EngagementKind,
    EngagementRecorded,
    EventType,
    HandoffAcknowledged,
    IntentObserved,
    MatchInfo,
    RoutingDecided,
    Signal,
    Tier,
    Urgency,
)

CONFIG = Path(__file__).resolve().parents[1] / "config/example"
ACCOUNTS = 5000  # the TAL's size: more than a warm-up plus a measured run touch
# A fixed Monday afternoon: the router decides by event time, so runs can be compared (--digest).
BASE = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
TIERS = (Tier.T1, Tier.T2, Tier.T3)
# (territory, AE, SDR): the example directory's people
TEAMS = (
    ("na-east", "ava.ae", "dan.sdr"),
    ("na-central", "ben.ae", "dan.sdr"),
    ("emea", "chloe.ae", "eve.sdr"),
    ("na-west", None, "finn.sdr"),
)
ASSIGNEES = ("ava.ae", "ben.ae", "chloe.ae", "dan.sdr", "eve.sdr", "finn.sdr")
CRM_IDS = {"ava.ae": "hs-owner-101", "dan.sdr": "hs-owner-201", "eve.sdr": "hs-owner-202"}

_sequence = itertools.count()


def next_numbers(n: int) -> list[int]:
    return [next(_sequence) for _ in range(n)]


def domain(i: int) -> str:
    return f"bench{i % ACCOUNTS:05d}.com"


def name(i: int) -> str:
    return f"Bench Company {i % ACCOUNTS:05d}"


def at(k: int) -> datetime:
    return BASE + timedelta(seconds=k)


def wrap(payload: BaseModel, type: EventType, k: int, subject: str | None) -> Envelope:
    return Envelope.wrap(
        payload, type=type, source="/bench", subject=subject, id=f"bench-{k}-{type}", time=at(k)
    )


def directory() -> Directory:
    """The example directory with room for a burst: capacity would turn handoffs into conflicts."""
    people = load_directory(CONFIG / "people.yaml")
    roomy = tuple(p.model_copy(update={"capacity": 1_000_000}) for p in people.people)
    return people.model_copy(update={"people": roomy})


# ---- router: meeting requests, engagement, intent and CRM events on a large TAL --------------


async def router_setup(engine: AsyncEngine) -> Handler:
    from tandem_router.adapters import repository
    from tandem_router.config import RouterConfig, load_config
    from tandem_router.domain.model import AccountSeed
    from tandem_router.handlers import build_handler

    config = load_config(CONFIG)
    config = RouterConfig(rules=config.rules, directory=directory())
    seeds = []
    for i in range(ACCOUNTS):
        territory, ae, sdr = TEAMS[i % len(TEAMS)]
        seeds.append(
            AccountSeed(
                account_key=domain(i),
                name=name(i),
                tier=TIERS[i % 3],
                ae_id=ae,
                sdr_id=sdr if i % 2 else None,
                marketer_id="mia.marketing",
                territory=territory,
                aliases=(f"bench{i:05d}.io",) if i % 5 == 0 else (),
            ).to_state()
        )
    async with session_factory(engine).begin() as session:
        for start in range(0, len(seeds), 500):
            await repository.seed_accounts(session, seeds[start : start + 500])
    return build_handler(config)


def router_event(k: int) -> Envelope:
    key, slot = domain(k), k % 20
    if slot < 10 or slot == 18:  # meeting requests; slot 18 from companies not on the TAL
        host = f"newco{k}.com" if slot == 18 else key
        company = f"Newco {k} Ltd" if slot == 18 else name(k)
        meeting = EngagementRecorded(
            engagement_id=f"eng-{k}",
            source="generic",
            kind=EngagementKind.MEETING_REQUEST,
            account_key=key if slot % 2 and slot != 18 else None,
            company_name=company,
            contact_email=f"lead{k}@{host}",
            contact_name=f"Lead {k}",
            occurred_at=at(k),
        )
        return wrap(meeting, EventType.ENGAGEMENT_RECORDED, k, key if slot != 18 else host)
    if slot < 14:
        kind = EngagementKind.PAGE_VIEW if slot < 12 else EngagementKind.CONTENT_DOWNLOAD
        view = EngagementRecorded(
            engagement_id=f"eng-{k}",
            source="segment",
            kind=kind,
            account_key=key,
            contact_email=f"reader{k}@{key}",
            url=f"https://tandem.example/p/{k % 40}",
            content_title=f"Guide {k % 40}",
            occurred_at=at(k),
        )
        return wrap(view, EventType.ENGAGEMENT_RECORDED, k, key)
    if slot < 16:
        intent = IntentObserved(
            provider="bombora",
            account_key=key,
            company_name=name(k),
            topic=f"topic-{k % 7}",
            score=float(40 + k % 50),
            surging=k % 3 == 0,
            observed_at=at(k),
        )
        return wrap(intent, EventType.INTENT_OBSERVED, k, key)
    if slot in (16, 19):
        contact = ContactUpserted(
            crm=CrmSystem.HUBSPOT,
            crm_id=f"c-{k}",
            is_lead=slot == 19,
            email=f"contact{k}@{key}",
            company_name=name(k),
            account_key=key,
            owner_id="hs-owner-101",
            occurred_at=at(k),
        )
        kind_of = EventType.LEAD_UPSERTED if slot == 19 else EventType.CONTACT_UPSERTED
        return wrap(contact, kind_of, k, key)
    activity = ActivityLogged(
        crm=CrmSystem.HUBSPOT,
        activity_id=f"act-{k}",
        kind=ActivityKind.CALL,
        account_key=key,
        contact_email=f"lead{k}@{key}",
        actor_id="hs-owner-101",
        occurred_at=at(k),
    )
    return wrap(activity, EventType.ACTIVITY_LOGGED, k, key)


def router_events(n: int) -> list[Envelope]:
    return [router_event(k) for k in next_numbers(n)]


# ---- SLA monitor: routing decisions, touches and acknowledgements ----------------------------


async def sla_setup(engine: AsyncEngine) -> Handler:
    from tandem_sla_monitor.config import load_config
    from tandem_sla_monitor.handlers import SlaHandlers

    config = load_config(CONFIG)
    return SlaHandlers(policy=config.policy, directory=directory(), now=utcnow).handle


def routing(k: int) -> RoutingDecided:
    assignee = ASSIGNEES[k % len(ASSIGNEES)]
    return RoutingDecided(
        decision_id=f"decision-{k}",
        handoff_id=f"handoff-{k}",
        account_key=domain(k),
        account_name=name(k),
        tier=TIERS[k % 3],
        in_tal=True,
        signal=Signal.MEETING_REQUEST,
        assignee_id=assignee,
        assignee_role="ae" if assignee.endswith(".ae") else "sdr",
        notified_ids=["mia.marketing"],
        contact_email=f"lead{k}@{domain(k)}",
        match=MatchInfo(method="domain", matched_value=domain(k)),
        rule_set_version="bench",
        explanation=["rule set bench", f"match: domain {domain(k)}", "rule: tier path"],
        decided_at=at(k),
    )


def sla_event(k: int) -> Envelope:
    slot = k % 10
    if slot < 7:
        return wrap(routing(k), EventType.ROUTING_DECIDED, k, domain(k))
    decided = k - slot  # a decision of a few events ago
    assignee = ASSIGNEES[decided % len(ASSIGNEES)]
    if slot < 9:
        touch = ActivityLogged(
            crm=CrmSystem.HUBSPOT,
            activity_id=f"act-{k}",
            kind=ActivityKind.CALL,
            account_key=domain(decided),
            contact_email=f"lead{decided}@{domain(decided)}",
            actor_id=CRM_IDS.get(assignee, assignee),
            occurred_at=at(k),
        )
        return wrap(touch, EventType.ACTIVITY_LOGGED, k, domain(decided))
    ack = HandoffAcknowledged(
        handoff_id=f"handoff-{decided}", person_id=assignee, via="slack", acknowledged_at=at(k)
    )
    return wrap(ack, EventType.HANDOFF_ACKNOWLEDGED, k, domain(decided))


def sla_events(n: int) -> list[Envelope]:
    return [sla_event(k) for k in next_numbers(n)]


# ---- alerts: the alert requests routing, SLA clocks and conflicts raise ----------------------


async def alerts_setup(engine: AsyncEngine) -> Handler:
    from tandem_alerts.domain.plan import Transports
    from tandem_alerts.handlers import make_on_alert_requested

    return make_on_alert_requested(
        directory=directory(),
        transports=Transports(slack=True, email=True),
        crm_base_url="https://app.hubspot.com/contacts/1",
        clock=utcnow,
    )


def alert(k: int) -> AlertRequested:
    assignee = ASSIGNEES[k % len(ASSIGNEES)]
    kind = (AlertKind.HANDOFF, AlertKind.HANDOFF_FYI, AlertKind.MARKETING_FYI)[k % 3]
    recipients = {
        AlertKind.HANDOFF: [assignee],
        AlertKind.HANDOFF_FYI: ["ava.ae"],
        AlertKind.MARKETING_FYI: ["mia.marketing"],
    }[kind]
    if k % 10 == 9:
        kind, recipients = AlertKind.ROUTING_CONFLICT, ["sam.manager"]
    return AlertRequested(
        alert_id=f"alert-{k}",
        kind=kind,
        urgency=Urgency.URGENT if k % 4 == 0 else Urgency.NORMAL,
        recipient_ids=recipients,
        channel_ids=["abm-marketing"] if kind is AlertKind.MARKETING_FYI else [],
        title=f"Meeting request at {name(k)}",
        summary="A contact asked for a meeting",
        account_key=domain(k),
        account_name=name(k),
        tier=TIERS[k % 3],
        signal=Signal.MEETING_REQUEST,
        handoff_id=f"handoff-{k}",
        assignee_id=assignee,
        reason="the account's AE",
        requested_at=at(k),
    )


def alerts_events(n: int) -> list[Envelope]:
    return [wrap(alert(k), EventType.ALERT_REQUESTED, k, domain(k)) for k in next_numbers(n)]
