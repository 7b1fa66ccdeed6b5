"""The router over the real broker and database, as two replicas of one consumer group.

Every test keys its events by account domains unique to it, and reads the router's output from a
collector that follows the routing and alert-request topics from the beginning.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
import yaml
from test_router_support import (
    Router,
    at,
    engagement,
    listed,
    new_schema,
    router_config,
    running_router,
)

from tandem_router import commands
from tandem_router.adapters import repository
from tandem_router.adapters.tables import handoffs, routed_events
from tandem_router.domain.model import AccountState, Assignment
from tandem_shared import topics
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AlertKind,
    EngagementKind,
    EventType,
    HandoffReassignRequested,
    IntentObserved,
    RoutingConflict,
    RoutingDecided,
    Signal,
    SlaEvent,
    Tier,
)

pytestmark = pytest.mark.integration

# A pool of its own for the load test, so other tests' handoffs never use its capacity.
LOAD_REPS = {"lara.sdr": (40, 1), "liam.sdr": (30, 2), "lena.sdr": (20, 1)}  # capacity, weight
LOAD_TERRITORY = "load-test"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def router(infra: Any) -> AsyncIterator[Router]:
    """Two router replicas in one fresh consumer group, over a schema of their own."""
    settings = infra.settings()
    config = router_config(
        settings.config_dir, reps=LOAD_REPS, pool="load-sdrs", territory=LOAD_TERRITORY
    )
    schema = await new_schema(settings)
    group = f"router-it-{uuid.uuid4().hex[:8]}"
    async with running_router(infra, config, schema=schema, group=group) as running:
        yield running


# ---- tests ------------------------------------------------------------------------------------


async def test_seed_fills_the_router_and_never_overwrites(router: Router) -> None:
    async with router.sessions() as session:
        acme = await repository.get_account(session, "acme.com")
    assert acme is not None and acme.state.in_tal and acme.state.tier == Tier.T1
    changed = acme.state.model_copy(update={"tier": Tier.T3, "tal": Assignment()})
    async with router.sessions.begin() as session:
        assert await repository.seed_accounts(session, [changed]) == 0
    async with router.sessions() as session:
        again = await repository.get_account(session, "acme.com")
    assert again is not None and again.state.tier == Tier.T1


async def test_tier1_meeting_goes_to_the_ae_with_marketing_fyi(router: Router, unique: str) -> None:
    key = f"acme-{unique}.com"
    await listed(
        router, key, Tier.T1, ae_id="ava.ae", sdr_id="dan.sdr", marketer_id="mia.marketing"
    )
    await router.meeting(key)
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.assignee_role, routing.tier) == ("ava.ae", "ae", Tier.T1)
    assert routing.signal == Signal.MEETING_REQUEST and routing.match.method == "domain"
    assert routing.rule_set_version == router.config.rules.version
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF, AlertKind.MARKETING_FYI})
    assert alerts[AlertKind.HANDOFF].recipient_ids == ["ava.ae"]
    assert alerts[AlertKind.HANDOFF].urgency == "urgent"
    assert alerts[AlertKind.MARKETING_FYI].recipient_ids == ["mia.marketing"]
    context = alerts[AlertKind.HANDOFF].context
    assert "Pricing guide" in context.content_consumed
    assert f"jo@{key} requested a meeting" in context.research_summary
    assert [item.kind for item in context.engagement_history] == ["meeting_request"]
    assert "pricing" in context.suggested_approach


async def test_tier2_meeting_goes_to_the_sdr_with_an_ae_fyi(router: Router, unique: str) -> None:
    key = f"initech-{unique}.fr"
    await listed(router, key, Tier.T2, ae_id="chloe.ae", sdr_id="eve.sdr", territory="emea")
    await router.meeting(key, contact="li")
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.tier) == ("eve.sdr", Tier.T2)
    assert "chloe.ae" in routing.notified_ids
    alerts = await router.outputs.alerts(
        key, {AlertKind.HANDOFF, AlertKind.HANDOFF_FYI, AlertKind.MARKETING_FYI}
    )
    assert alerts[AlertKind.HANDOFF_FYI].recipient_ids == ["chloe.ae"]
    assert alerts[AlertKind.MARKETING_FYI].channel_ids == ["abm-marketing"]  # no account marketer


async def test_tier3_meeting_is_round_robin_over_the_territory_pool(
    router: Router, unique: str
) -> None:
    key = f"hooli-{unique}.com"
    await listed(router, key, Tier.T3, territory="na-west")
    await router.meeting(key, contact="ed")
    [routing] = await router.outputs.decision(key)
    assert (routing.assignee_id, routing.tier) == ("finn.sdr", Tier.T3)
    assert any("round robin in pool na-west-sdrs" in line for line in routing.explanation)


async def test_engagement_spike_hands_off(router: Router, unique: str) -> None:
    key = f"spike-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    views = [
        engagement(key, EngagementKind.PAGE_VIEW, email=f"amy@{key}", when=at(10 - i))
        for i in range(5)
    ]
    await router.send(topics.ENGAGEMENT, *views)
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.ENGAGEMENT_SPIKE and routing.assignee_id == "ava.ae"
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF})
    assert len(alerts[AlertKind.HANDOFF].context.engagement_history) == 5


async def test_engagement_spike_is_measured_against_the_account_baseline(
    router: Router, unique: str
) -> None:
    key = f"busy-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    day = 24 * 60
    # ten views over the four weeks before the 7-day window: 2.5 expected per window, so a
    # spike (ratio 3) needs 8 views in the window, not the 5 a quiet account needs
    baseline = [
        engagement(key, EngagementKind.PAGE_VIEW, email=f"amy@{key}", when=at((9 + 2.5 * i) * day))
        for i in range(10)
    ]
    recent = [
        engagement(key, EngagementKind.PAGE_VIEW, email=f"amy@{key}", when=at(60 - i))
        for i in range(8)
    ]
    await router.send(topics.ENGAGEMENT, *sorted(baseline, key=lambda e: e.time), *recent)
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.ENGAGEMENT_SPIKE
    assert routing.decided_at == recent[-1].time  # the eighth recent view, not the fifth
    assert any("8 engagements in the last 7 days against 2.5 expected" in line
               for line in routing.explanation)  # fmt: skip


async def test_multiple_contacts_hand_off(router: Router, unique: str) -> None:
    key = f"multi-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    views = [
        engagement(key, EngagementKind.PAGE_VIEW, email=f"{who}@{key}", when=at(10 - i))
        for i, who in enumerate(("amy", "bob", "cy"))
    ]
    await router.send(topics.ENGAGEMENT, *views)
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.MULTIPLE_CONTACTS
    assert views[-1].id == router.outputs.of(key, EventType.ROUTING_DECIDED)[0].causationid


async def test_intent_surge_hands_off(router: Router, unique: str) -> None:
    key = f"surge-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae")
    observed = IntentObserved(
        provider="bombora", account_key=key, topic="CRM Software", score=85, observed_at=at(1)
    )
    await router.send(
        topics.INTENT,
        Envelope.wrap(
            observed, type=EventType.INTENT_OBSERVED, source="/test", subject=key, time=at(1)
        ),
    )
    [routing] = await router.outputs.decision(key)
    assert routing.signal == Signal.INTENT_SURGE
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF})
    assert alerts[AlertKind.HANDOFF].context.intent_signals[0].topic == "CRM Software"


async def test_decision_trail_reassignment_and_sla_close(router: Router, unique: str) -> None:
    key = f"trail-{unique}.com"
    await listed(router, key, Tier.T1, ae_id="ava.ae", sdr_id="dan.sdr")
    await router.meeting(key)
    [first] = await router.outputs.decision(key)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=router.app), base_url="http://t"
    ) as http:
        trail = (await http.get(f"/v1/decisions/{first.decision_id}")).json()
        state = (await http.get(f"/v1/accounts/{key.upper()}/state")).json()
        missing = await http.get("/v1/decisions/nope")
    assert trail["explanation"] == first.explanation
    assert any(line.startswith("rule: tier 1") for line in trail["explanation"])
    assert state["state"]["handoffs"][0]["handoff_id"] == first.handoff_id
    assert missing.status_code == 404

    reassign = HandoffReassignRequested(
        handoff_id=first.handoff_id,
        account_key=key,
        previous_assignee_id="ava.ae",
        reason="on leave",
        requested_at=at(0.5),
    )
    await router.send(
        topics.HANDOFF_ACTIONS,
        Envelope.wrap(
            reassign,
            type=EventType.HANDOFF_REASSIGN_REQUESTED,
            source="/test",
            subject=key,
            time=at(0.5),
        ),
    )
    second = (await router.outputs.decision(key, count=2))[1]
    # The AE handed it on: their cover (people.yaml) takes it, not the SDR path.
    assert (second.handoff_id, second.assignee_id) == (first.handoff_id, "ben.ae")
    assert "ava.ae asked to hand it on; handed to cover ben.ae" in second.explanation

    met = SlaEvent(
        handoff_id=first.handoff_id, account_key=key, assignee_id="ben.ae", tier=Tier.T1,
        signal=Signal.MEETING_REQUEST, started_at=at(0.5), deadline=at(-60), allowed_seconds=3600,
        policy_version="p1", within_sla=True, occurred_at=at(0),
    )  # fmt: skip
    met_envelope = Envelope.wrap(met, type=EventType.SLA_MET, source="/test", subject=key)
    await router.send(topics.SLA, met_envelope)

    async def status() -> tuple[str, str]:
        async with router.sessions() as session:
            row = await session.execute(
                sa.select(handoffs.c.status, handoffs.c.assignee_id).where(
                    handoffs.c.handoff_id == first.handoff_id
                )
            )
            status, assignee = row.one()
            return status, assignee

    async with asyncio.timeout(20):
        while await status() != ("closed", "ben.ae"):
            await asyncio.sleep(0.05)
    # the close is archived too, so a what-if replay frees Ben's capacity when it was freed
    async with router.sessions() as session:
        replayed = {a.event_id: a.event_type for a in await repository.archived_events(session)}
    assert replayed[met_envelope.id] == EventType.SLA_MET


async def test_what_if_replays_the_archive_under_a_candidate(
    router: Router, unique: str, infra: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"whatif-{unique}.com"
    await listed(router, key, Tier.T3, territory="na-west")
    meeting = engagement(key, EngagementKind.MEETING_REQUEST, email=f"jo@{key}")
    await router.send(topics.ENGAGEMENT, meeting)
    [routing] = await router.outputs.decision(key)
    assert routing.assignee_id == "finn.sdr"
    settings = infra.settings()
    doc = yaml.safe_load((settings.config_dir / "routing.yaml").read_text())
    doc["version"] = "2099-01-01.1"
    doc["pools"]["na-west-sdrs"]["members"] = ["dan.sdr"]  # Finn leaves the west pool
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(doc))
    since = (meeting.time - timedelta(seconds=1)).isoformat()
    argv = ["--rules", str(candidate), "--since", since, "--schema", router.schema]
    assert await asyncio.to_thread(commands.what_if_command, settings, argv) == 0
    report = capsys.readouterr().out
    assert f"{meeting.id}: finn.sdr -> dan.sdr" in report
    assert "what-if: 2026-12-01.1 -> 2099-01-01.1" in report


async def test_two_replicas_route_every_event_once_within_capacity(
    router: Router, unique: str
) -> None:
    keys = [f"load{i}-{unique}.com" for i in range(300)]
    accounts = [
        AccountState(account_key=k, tier=Tier.T3, in_tal=True, territory=LOAD_TERRITORY,
                     tal=Assignment(tier=Tier.T3, territory=LOAD_TERRITORY))
        for k in keys
    ]  # fmt: skip
    async with router.sessions.begin() as session:
        assert await repository.seed_accounts(session, accounts) == len(keys)
    meetings = [engagement(k, EngagementKind.MEETING_REQUEST, email=f"jo@{k}") for k in keys]
    sent = {m.id for m in meetings}
    await router.send(topics.ENGAGEMENT, *meetings)

    def outcomes() -> list[Envelope]:
        return [
            e
            for e in router.outputs.envelopes.values()
            if e.causationid in sent and e.type != EventType.ALERT_REQUESTED
        ]

    await router.outputs.wait(lambda: len(outcomes()) >= len(sent), timeout=45)
    await asyncio.sleep(0.5)  # room for a double decision to show up
    per_event = Counter(e.causationid for e in outcomes())
    assert set(per_event) == sent and set(per_event.values()) == {1}
    decided = [e.payload(RoutingDecided) for e in outcomes() if e.type == EventType.ROUTING_DECIDED]
    per_rep = Counter(r.assignee_id for r in decided)
    # 300 meetings against fewer seats: the load pool fills exactly, then the default pool
    # takes the overflow up to each rep's capacity, and the rest is escalated
    assert {rep: per_rep[rep] for rep in LOAD_REPS} == {
        rep: capacity for rep, (capacity, _) in LOAD_REPS.items()
    }
    unassigned = [
        e.payload(RoutingConflict) for e in outcomes() if e.type == EventType.ROUTING_CONFLICT
    ]
    assert unassigned and len(unassigned) == len(keys) - sum(per_rep.values())
    assert all(c.reason.startswith("no one can take the handoff") for c in unassigned)
    # both replicas took part, and no event was decided twice between them
    by_replica = [sum(1 for event_id in c if event_id in sent) for c in router.handled]
    assert all(n > 0 for n in by_replica) and sum(by_replica) == len(sent)
    async with router.sessions() as session:
        open_per_rep = await repository.open_handoff_counts(session)
        archived = await session.scalar(
            sa.select(sa.func.count())
            .select_from(routed_events)
            .where(routed_events.c.event_id.in_(sent))
        )
    capacity = {p.id: p.capacity for p in router.config.directory.people}
    assert all(open_per_rep[rep] == capacity[rep] for rep in per_rep)  # full, never over
    assert archived == len(sent)
