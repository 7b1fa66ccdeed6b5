"""The SLA monitor over the real broker and database, with a clock the tests move forward."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from test_sla_support import (
    COVER,
    COVER_CRM_ID,
    LEADER,
    MANAGER,
    REP,
    Running,
    activity,
    decision,
    running_sla,
    write_config,
)

from tandem_shared import topics
from tandem_shared.availability import people_availability
from tandem_shared.directory import Period
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import (
    AlertDelivered,
    AlertKind,
    AvailabilityChanged,
    DeliveryChannel,
    EventType,
    HandoffAcknowledged,
    HandoffAction,
    HandoffActionOutcome,
    RoutingDecided,
    Tier,
)
from tandem_shared.uow import unit_of_work
from tandem_sla_monitor.adapters.tables import early_activities, superseded_clocks
from tandem_sla_monitor.handlers import start_handoff_clock
from tandem_sla_monitor.publishing import emission_rows
from tandem_sla_monitor.settings import SlaSettings
from tandem_sla_monitor.timer import ClockTimer

pytestmark = pytest.mark.integration

# Meeting requests get 1 business minute: warning at 45 s, breach at 60 s, then the chain.
ESCALATION = """\
  - notify: assignee
    after_breach_minutes: 1
    repeat_every_minutes: 1
    max_repeats: 1
  - notify: manager
    after_breach_minutes: 3
  - notify: leadership
    after_breach_minutes: 5
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sla(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The service's consumer, relay and timer running in this loop for the whole module."""
    config_dir = write_config(
        tmp_path_factory.mktemp("sla-config"),
        escalation=ESCALATION,
        # A cover's touch counts for Tier 1 handoffs, not for Tier 2 ones.
        touched_by="{1: [assignee, cover, account_team], 2: [assignee, account_team]}",
    )
    async with running_sla(infra, config_dir) as running:
        yield running


def ids() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"h-{suffix}", f"acct-{suffix}.com"


async def start(sla: Running, handoff: str, account: str, tier: Tier = Tier.T1) -> Envelope:
    routed = decision(handoff, decided_at=sla.now(), account_key=account, tier=tier)
    await sla.produce(topics.ROUTING, routed)
    started: list[Envelope] = await sla.events.wait_for(handoff, EventType.SLA_STARTED)
    assert len(started) == 1
    return started[0]


async def test_a_touch_in_time_meets_the_sla(sla: Running) -> None:
    handoff, account = ids()
    started = await start(sla, handoff, account)
    touched_at = sla.now() + timedelta(seconds=10)
    await sla.produce(topics.CRM, activity(account_key=account, occurred_at=touched_at))
    [met] = await sla.events.wait_for(handoff, EventType.SLA_MET)
    assert met.data["within_sla"] is True
    assert met.causationid is not None
    assert datetime.fromisoformat(met.data["deadline"]) == datetime.fromisoformat(
        started.data["deadline"]
    )
    view = (await sla.http.get(f"/v1/clocks/{handoff}")).json()
    assert view["status"] == "met" and view["next_due_at"] is None
    assert view["remaining_business_seconds"] is None
    assert datetime.fromisoformat(view["touched_at"]) == touched_at


async def test_a_touch_by_someone_outside_the_team_does_not_stop_the_clock(sla: Running) -> None:
    handoff, account = ids()
    await start(sla, handoff, account)
    stranger = activity(account_key=account, occurred_at=sla.now(), actor_id="hs-owner-unknown")
    await sla.produce(topics.CRM, stranger)
    async with asyncio.timeout(10):
        while not await _stored_activity(sla, stranger.data["activity_id"]):
            await asyncio.sleep(0.05)
    view = (await sla.http.get(f"/v1/clocks/{handoff}")).json()
    assert view["status"] == "running" and view["remaining_business_seconds"] > 0


async def test_warning_then_a_touch_before_the_deadline(sla: Running) -> None:
    handoff, account = ids()
    await start(sla, handoff, account)
    sla.now.advance(seconds=46)
    [warning] = await sla.events.wait_for(handoff, EventType.SLA_WARNING)
    [alert] = await sla.events.wait_for(handoff, EventType.ALERT_REQUESTED)
    assert alert.data["kind"] == AlertKind.SLA_WARNING and alert.data["recipient_ids"] == [REP]
    assert warning.data["elapsed_business_seconds"] == 45
    await sla.produce(topics.CRM, activity(account_key=account, occurred_at=sla.now()))
    [met] = await sla.events.wait_for(handoff, EventType.SLA_MET)
    assert met.data["within_sla"] is True
    assert sla.events.of(handoff, EventType.SLA_BREACHED) == []


async def test_breach_escalates_up_the_chain_until_acknowledged(sla: Running) -> None:
    handoff, account = ids()
    await start(sla, handoff, account)
    sla.now.advance(seconds=61)
    [breached] = await sla.events.wait_for(handoff, EventType.SLA_BREACHED)
    breach_alert = await sla.events.wait_for(
        handoff, EventType.ALERT_REQUESTED, where=lambda e: e.data["kind"] == AlertKind.SLA_BREACH
    )
    assert breach_alert[0].data["recipient_ids"] == [REP, MANAGER]
    assert len(sla.events.of(handoff, EventType.SLA_WARNING)) == 1  # caught up, once

    sla.now.advance(seconds=60)  # level 1: the rep
    [level1] = await sla.events.wait_for(handoff, EventType.SLA_ESCALATED)
    assert (level1.data["escalation_level"], level1.data["escalated_to"]) == (1, [REP])

    sla.now.advance(seconds=120)  # the level 1 reminder and level 2: the manager
    escalated = await sla.events.wait_for(handoff, EventType.SLA_ESCALATED, count=3)
    assert [e.data["escalation_level"] for e in escalated] == [1, 1, 2]
    assert escalated[-1].data["escalated_to"] == [MANAGER]
    assert len({e.id for e in escalated}) == 3

    response = await sla.http.post(
        f"/v1/handoffs/{handoff}/acknowledge", json={"person_id": MANAGER}
    )
    assert response.status_code == 200, response.text
    view = response.json()
    await sla.events.wait_for(handoff, EventType.SLA_ACKNOWLEDGED)
    # Leadership (level 3, 5 minutes after the breach) waits for the 10-minute pause to end.
    resume = datetime.fromisoformat(view["acknowledged_at"]) + timedelta(minutes=10)
    assert datetime.fromisoformat(view["next_due_at"]) == resume
    assert view["status"] == "breached" and view["remaining_business_seconds"] == 0
    assert datetime.fromisoformat(breached.data["deadline"]) < datetime.fromisoformat(view["as_of"])

    sla.now.advance(minutes=10)
    [*_, level3] = await sla.events.wait_for(handoff, EventType.SLA_ESCALATED, count=4)
    assert level3.data["escalation_level"] == 3 and level3.data["escalated_to"] == [LEADER]
    assert sla.events.of(handoff, EventType.HANDOFF_REASSIGN_REQUESTED) == []  # not this policy


async def test_a_breach_hands_the_item_back_to_the_router_when_the_policy_says_so(
    sla: Running,
) -> None:
    handoff, account = ids()
    # A clock started under terms that reassign on breach (the module's policy does not).
    policy = sla.service.handlers.policy.model_copy(update={"reassign_on_breach": True})
    routed = decision(handoff, decided_at=sla.now(), account_key=account).payload(RoutingDecided)
    async with unit_of_work(sla.service.infra.sessions) as uow:
        emitted = await start_handoff_clock(
            uow.session, routed, policy=policy, directory=sla.service.handlers.directory
        )
        uow.emit_rows(emission_rows(emitted))
    await sla.events.wait_for(handoff, EventType.SLA_STARTED)
    sla.now.advance(seconds=61)
    [request] = await sla.events.wait_for(handoff, EventType.HANDOFF_REASSIGN_REQUESTED)
    [breached] = await sla.events.wait_for(handoff, EventType.SLA_BREACHED)
    assert request.data["previous_assignee_id"] == REP
    assert request.data["account_key"] == account
    deadline = datetime.fromisoformat(breached.data["deadline"])
    assert deadline.isoformat() in request.data["reason"]


async def test_activity_logged_before_its_decision_still_meets_the_sla(sla: Running) -> None:
    handoff, account = ids()
    decided_at = sla.now()
    early = activity(account_key=account, occurred_at=decided_at + timedelta(seconds=5))
    await sla.produce(topics.CRM, early)
    async with asyncio.timeout(10):
        while not await _stored_activity(sla, early.data["activity_id"]):
            await asyncio.sleep(0.05)
    await sla.produce(topics.ROUTING, decision(handoff, decided_at=decided_at, account_key=account))
    [met] = await sla.events.wait_for(handoff, EventType.SLA_MET)
    assert met.data["met_by_activity_id"] == early.data["activity_id"]
    assert met.data["within_sla"] is True
    assert len(sla.events.of(handoff, EventType.SLA_STARTED)) == 1


async def test_acknowledgement_event_and_api_errors(sla: Running) -> None:
    handoff, account = ids()
    await start(sla, handoff, account)
    ack = HandoffAcknowledged(
        handoff_id=handoff, person_id=REP, via="slack", acknowledged_at=sla.now()
    )
    envelope = Envelope.wrap(
        ack, type=EventType.HANDOFF_ACKNOWLEDGED, source="/test", subject=account
    )
    await sla.produce(topics.HANDOFF_ACTIONS, envelope)
    [acknowledged] = await sla.events.wait_for(handoff, EventType.SLA_ACKNOWLEDGED)
    assert acknowledged.causationid == envelope.id
    view = (await sla.http.get(f"/v1/clocks/{handoff}")).json()
    assert view["acknowledged_by"] == REP and view["status"] == "running"

    unknown = await sla.http.post("/v1/handoffs/nope/acknowledge", json={"person_id": REP})
    assert unknown.status_code == 404
    assert (await sla.http.get("/v1/clocks/nope")).status_code == 404
    stranger = await sla.http.post(f"/v1/handoffs/{handoff}/acknowledge", json={"person_id": "x"})
    assert stranger.status_code == 422


async def test_reassignment_closes_the_old_clock_and_starts_a_new_one(sla: Running) -> None:
    handoff, account = ids()
    first = await start(sla, handoff, account)
    again = decision(handoff, decided_at=sla.now(), account_key=account, assignee_id=MANAGER)
    await sla.produce(topics.ROUTING, again)
    started = await sla.events.wait_for(handoff, EventType.SLA_STARTED, count=2)
    assert started[1].data["assignee_id"] == MANAGER and started[1].id != first.id
    view = (await sla.http.get(f"/v1/clocks/{handoff}")).json()
    assert view["assignee_id"] == MANAGER and view["decision_id"] == again.data["decision_id"]
    async with sla.service.infra.sessions() as session:
        superseded = (
            (
                await session.execute(
                    sa.select(superseded_clocks.c.superseded_by).where(
                        superseded_clocks.c.handoff_id == handoff
                    )
                )
            )
            .scalars()
            .all()
        )
    assert superseded == [again.data["decision_id"]]


async def test_metrics_by_tier_and_signal(sla: Running) -> None:
    since = sla.now()
    (met_id, met_account), (late_id, late_account) = ids(), ids()
    await start(sla, met_id, met_account)
    await start(sla, late_id, late_account)
    await sla.produce(topics.CRM, activity(account_key=met_account, occurred_at=sla.now()))
    await sla.events.wait_for(met_id, EventType.SLA_MET)
    until = sla.now() + timedelta(seconds=1)
    sla.now.advance(seconds=61)
    await sla.events.wait_for(late_id, EventType.SLA_BREACHED)
    response = await sla.http.get(
        "/v1/metrics/sla", params={"since": since.isoformat(), "until": until.isoformat()}
    )
    assert response.status_code == 200, response.text
    [cell] = response.json()["by_tier_and_signal"]
    assert (cell["tier"], cell["signal"]) == ("1", "meeting_request")
    assert (cell["handoffs"], cell["met"], cell["breached"]) == (2, 1, 1)
    assert cell["success_rate"] == 0.5 and cell["first_touch_business"]["count"] == 1


async def test_two_replicas_fire_each_breach_exactly_once(sla: Running) -> None:
    handoffs = [ids() for _ in range(12)]
    for handoff, account in handoffs:
        await sla.produce(
            topics.ROUTING, decision(handoff, decided_at=sla.now(), account_key=account)
        )
    for handoff, _ in handoffs:
        await sla.events.wait_for(handoff, EventType.SLA_STARTED)
    # Two more timers, ahead of the service's own, race for the same rows in small batches.
    ahead = lambda: sla.now() + timedelta(seconds=61)  # noqa: E731
    settings = SlaSettings(batch_size=3)
    directory = sla.service.handlers.directory
    replicas = [
        ClockTimer(
            sessions=sla.service.infra.sessions, directory=directory, settings=settings, now=ahead
        )
        for _ in range(2)
    ]
    claimed = [0, 0]
    while True:
        rounds = await asyncio.gather(*(r.tick() for r in replicas))
        claimed = [c + n for c, n in zip(claimed, rounds, strict=True)]
        if not any(rounds):
            break
    assert sum(claimed) >= len(handoffs)
    breach_ids = []
    for handoff, _ in handoffs:
        [breached] = await sla.events.wait_for(handoff, EventType.SLA_BREACHED)
        breach_ids.append(breached.id)
    # Everything the replicas wrote is on the topics and read: each breach went out once.
    await sla.settled()
    published = [e.id for _, e in sla.events.received if e.type == EventType.SLA_BREACHED]
    assert sorted(i for i in published if i in breach_ids) == sorted(breach_ids)
    for handoff, _ in handoffs:
        assert len(sla.events.of(handoff, EventType.SLA_BREACHED)) == 1
        assert len(sla.events.of(handoff, EventType.SLA_WARNING)) == 1


def cover_alerted(handoff: str, account: str) -> Envelope:
    """Alerts delivered a handoff's alert to the rep's cover during the rep's quiet hours."""
    delivered = AlertDelivered(
        alert_id=f"alert-{handoff}",
        recipient_id=COVER,
        channel=DeliveryChannel.SLACK,
        destination="U0CORA",
        attempts=1,
        on_behalf_of=REP,
        handoff_id=handoff,
        delivered_at=utcnow(),
    )
    return Envelope.wrap(delivered, type=EventType.ALERT_DELIVERED, source="/test", subject=account)


async def test_a_covers_call_counts_where_the_policy_says_so(sla: Running) -> None:
    tier1, tier1_account = ids()
    tier2, tier2_account = ids()
    await start(sla, tier1, tier1_account)
    await start(sla, tier2, tier2_account, tier=Tier.T2)
    # Tier 1: the cover's call is handled before the delivery that made them the cover.
    call = activity(account_key=tier1_account, occurred_at=sla.now(), actor_id=COVER_CRM_ID)
    await sla.produce(topics.CRM, call)
    await _until(lambda: _stored_activity(sla, call.data["activity_id"]))
    assert (await sla.http.get(f"/v1/clocks/{tier1}")).json()["status"] == "running"
    await sla.produce(topics.ALERT_DELIVERIES, cover_alerted(tier1, tier1_account))
    [met] = await sla.events.wait_for(tier1, EventType.SLA_MET)
    assert met.data["met_by_activity_id"] == call.data["activity_id"]
    # Tier 2: the cover was alerted, then called; the policy does not count covers there.
    await sla.produce(topics.ALERT_DELIVERIES, cover_alerted(tier2, tier2_account))
    await _until(lambda: _cover_ids(sla, tier2), equals=[COVER])
    late = activity(account_key=tier2_account, occurred_at=sla.now(), actor_id=COVER_CRM_ID)
    await sla.produce(topics.CRM, late)
    await _until(lambda: _stored_activity(sla, late.data["activity_id"]))
    assert (await sla.http.get(f"/v1/clocks/{tier2}")).json()["status"] == "running"
    assert sla.events.of(tier2, EventType.SLA_MET) == []


async def test_a_breach_goes_to_the_cover_of_a_manager_away_since_run_time(sla: Running) -> None:
    # Mo sets himself away (on tandem.people, not in people.yaml) with Cora covering.
    away = [Period(start=sla.now() - timedelta(minutes=1), end=sla.now() + timedelta(hours=1))]
    await _availability(sla, MANAGER, out_of_office=away, cover_id=COVER)
    handoff, account = ids()
    await start(sla, handoff, account)
    sla.now.advance(seconds=61)
    [breach] = await sla.events.wait_for(
        handoff, EventType.ALERT_REQUESTED, where=lambda e: e.data["kind"] == AlertKind.SLA_BREACH
    )
    assert breach.data["recipient_ids"] == [REP, COVER]
    await _availability(sla, MANAGER, out_of_office=[], clear_cover=True)  # back, for the others


async def test_a_handoff_left_unowned_stops_its_clock_until_someone_is_assigned(
    sla: Running,
) -> None:
    handoff, account = ids()
    await start(sla, handoff, account)
    # Rita rejects it and the router finds nobody: no owner, no clock, no breach.
    rejected = HandoffActionOutcome(
        action_id=f"a-{handoff}",
        handoff_id=handoff,
        account_key=account,
        action=HandoffAction.REJECT,
        actor_id=REP,
        via="api",
        taken=True,
        code="done",
        message="Rejected.",
        previous_assignee_id=REP,
        assignee_id=None,
        occurred_at=sla.now(),
    )
    taken = Envelope.wrap(
        rejected, type=EventType.HANDOFF_ACTION_TAKEN, source="/test", subject=account
    )
    await sla.produce(topics.HANDOFF_ACTIONS, taken)
    view = await _clock_when(sla, handoff, lambda v: v["unowned_since"] is not None)
    assert view["next_due_at"] is None and view["remaining_business_seconds"] is None
    sla.now.advance(seconds=61)
    # A manager assigns it to Cora: her clock starts then, and it is hers that breaches.
    assigned = decision(handoff, decided_at=sla.now(), account_key=account, assignee_id=COVER)
    await sla.produce(topics.ROUTING, assigned)
    await sla.events.wait_for(
        handoff, EventType.SLA_STARTED, where=lambda e: e.data["assignee_id"] == COVER
    )
    sla.now.advance(seconds=61)
    [breached] = await sla.events.wait_for(handoff, EventType.SLA_BREACHED)
    assert breached.data["assignee_id"] == COVER


async def _clock_when(sla: Running, handoff: str, ready: Callable[[Any], bool]) -> Any:
    async with asyncio.timeout(10):
        while not ready(view := (await sla.http.get(f"/v1/clocks/{handoff}")).json()):
            await asyncio.sleep(0.05)
    return view


async def _availability(sla: Running, person_id: str, **change: Any) -> None:
    """Publish a run-time availability change; wait until the monitor stored it."""
    at = sla.now()
    payload = AvailabilityChanged(
        change_id=uuid.uuid4().hex,
        person_id=person_id,
        changed_by=person_id,
        via="api",
        changed_at=at,
        **change,
    )
    envelope = Envelope.wrap(
        payload, type=EventType.AVAILABILITY_CHANGED, source="/test", subject=person_id
    )
    await sla.produce(topics.PEOPLE, envelope)

    async def stored() -> object:
        async with sla.service.infra.sessions() as session:
            query = sa.select(people_availability.c.changed_at).where(
                people_availability.c.person_id == person_id
            )
            return (await session.execute(query)).scalar() == at

    await _until(stored)


async def _until(check: Callable[[], Awaitable[object]], *, equals: object = True) -> None:
    async with asyncio.timeout(10):
        while await check() != equals:
            await asyncio.sleep(0.05)


async def _cover_ids(sla: Running, handoff: str) -> list[str]:
    view = (await sla.http.get(f"/v1/clocks/{handoff}")).json()
    assert view["touched_by"] == ["assignee", "account_team"]  # Tier 2's terms
    return list(view["cover_ids"])


async def _stored_activity(sla: Running, activity_id: str) -> bool:
    async with sla.service.infra.sessions() as session:
        found = await session.execute(
            sa.select(early_activities.c.activity_id).where(
                early_activities.c.activity_id == activity_id
            )
        )
        return found.first() is not None
