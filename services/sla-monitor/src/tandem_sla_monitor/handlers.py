"""Use cases of the SLA monitor: load the clock, decide with the pure core, save, emit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.availability import LiveDirectory, record_change
from tandem_shared.consumer import UnitOfWork
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    ActivityLogged,
    AlertDelivered,
    AvailabilityChanged,
    EventType,
    HandoffAcknowledged,
    HandoffActionOutcome,
    RoutingConflict,
    RoutingDecided,
)
from tandem_shared.handoff_policy import ClockEffect, clock_effect
from tandem_shared.telemetry import current_traceparent
from tandem_sla_monitor.adapters import repository as repo
from tandem_sla_monitor.domain.clock import (
    TOUCH_KINDS,
    SlaClock,
    acknowledge,
    qualifying_activity,
    record_activity,
    start_clock,
    stop_unowned,
    with_cover,
)
from tandem_sla_monitor.domain.emissions import Emission
from tandem_sla_monitor.domain.policy import SlaPolicy
from tandem_sla_monitor.publishing import emission_rows

log = structlog.get_logger(__name__)


class UnknownAssigneeError(LookupError):
    """A routing decision names someone the people directory does not know."""


async def start_handoff_clock(
    session: AsyncSession, decision: RoutingDecided, *, policy: SlaPolicy, directory: Directory
) -> list[Emission]:
    """Start (or restart, on reassignment) a handoff's clock; stored early touches stop it."""
    keys = repo.match_keys(account_key=decision.account_key, contact_email=decision.contact_email)
    await repo.lock_match_keys(session, keys)
    current, early = await repo.lock_clock_with_early_activities(
        session,
        decision.handoff_id,
        account_key=decision.account_key,
        contact_email=decision.contact_email,
        since=decision.decided_at,  # the clock's start
    )
    if current is not None:
        if current.clock.decision_id == decision.decision_id:
            return []  # the same decision again, under another envelope
        if current.clock.started_at > decision.decided_at:
            log.info("older routing decision ignored", handoff_id=decision.handoff_id)
            return []
    person = directory.get(decision.assignee_id)
    if person is None:
        raise UnknownAssigneeError(f"assignee {decision.assignee_id!r} is not in the directory")
    clock, emitted = start_clock(decision, person, policy)
    if decision.accepted_by is not None:  # a cover took it by accepting: escalation pauses
        clock, paused = acknowledge(clock, decision.accepted_by, decision.decided_at)
        emitted += paused
    # The account's owners, and whoever the decision told (an FYI'd AE or their cover).
    team = frozenset([*decision.account_team_ids, *decision.notified_ids])
    touch = qualifying_activity(clock, early, team_ids=team, directory=directory)
    if touch is not None:
        clock, met = record_activity(clock, touch, team_ids=team, directory=directory)
        emitted += met
    # The timer fires this clock later, from its row: keep the decision's trace for it.
    await repo.save_clock(
        session,
        clock,
        team_ids=team,
        trace_context=current_traceparent(),
        superseding=current.clock if current is not None else None,
    )
    return emitted


async def log_activity(
    session: AsyncSession, activity: ActivityLogged, *, directory: Directory, now: datetime
) -> list[Emission]:
    """Stop the clocks a touch answers, and keep it for decisions still on their way."""
    if activity.kind not in TOUCH_KINDS:
        return []
    keys = repo.match_keys(account_key=activity.account_key, contact_email=activity.contact_email)
    if not keys:
        return []  # nothing a clock could be matched on
    await repo.lock_match_keys(session, keys)
    emitted: list[Emission] = []
    touchable = await repo.store_activity_and_lock_touchable(session, activity, stored_at=now)
    for stored in touchable:
        clock, events = record_activity(
            stored.clock, activity, team_ids=stored.team_ids, directory=directory
        )
        if events:
            await repo.update_clock(session, clock)
            emitted += events
    return emitted


async def note_cover(
    session: AsyncSession, delivered: AlertDelivered, *, directory: Directory
) -> list[Emission]:
    """Let the cover an alert reached in the assignee's place touch the handoff for them.

    The cover's call may have been handled before this delivery: the touches stored since the
    clock started are checked again.
    """
    if delivered.on_behalf_of is None or delivered.handoff_id is None:
        return []
    seen = await repo.get_clock(session, delivered.handoff_id)
    if seen is None or seen.clock.assignee_id != delivered.on_behalf_of:
        return []
    # The same lock order as the decision and activity handlers: match keys, then the clock.
    clock = seen.clock
    await repo.lock_match_keys(
        session, repo.match_keys(account_key=clock.account_key, contact_email=clock.contact_email)
    )
    current, early = await repo.lock_clock_with_early_activities(
        session,
        delivered.handoff_id,
        account_key=clock.account_key,
        contact_email=clock.contact_email,
        since=clock.started_at,
    )
    if current is None:
        return []
    covered = with_cover(
        current.clock, cover_id=delivered.recipient_id, on_behalf_of=delivered.on_behalf_of
    )
    if covered is current.clock:
        return []
    emitted: list[Emission] = []
    touch = qualifying_activity(covered, early, team_ids=current.team_ids, directory=directory)
    if touch is not None:
        covered, emitted = record_activity(
            covered, touch, team_ids=current.team_ids, directory=directory
        )
    await repo.update_clock(session, covered)
    return emitted


async def acknowledge_handoff(
    session: AsyncSession, *, handoff_id: str, person_id: str, at: datetime
) -> tuple[SlaClock, list[Emission]] | None:
    """Record that someone took a handoff in hand; None when no clock runs for it."""
    stored = await repo.get_clock(session, handoff_id, for_update=True)
    if stored is None:
        return None
    clock, emitted = acknowledge(stored.clock, person_id, at)
    if emitted:
        await repo.update_clock(session, clock)
    return clock, emitted


async def stop_unowned_clock(
    session: AsyncSession,
    *,
    handoff_id: str,
    at: datetime,
    previous_assignee_id: str | None = None,
) -> None:
    """Stop the clock of a handoff nobody owns now (by default whoever held it last let it go)."""
    stored = await repo.get_clock(session, handoff_id, for_update=True)
    if stored is None:
        return
    owner = previous_assignee_id or stored.clock.assignee_id
    stopped = stop_unowned(stored.clock, previous_assignee_id=owner, at=at)
    if stopped is not stored.clock:
        await repo.update_clock(session, stopped)
        log.info("clock stopped: nobody owns the handoff", handoff_id=handoff_id)


@dataclass(frozen=True)
class SlaHandlers:
    """The consumer side: one handler for the routing, CRM, handoff-action, delivery topics."""

    policy: SlaPolicy
    directory: Directory
    now: Callable[[], datetime]
    live: LiveDirectory | None = None  # the directory with run-time availability over it

    async def handle(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Dispatch an event by type; the other types on these topics are not ours."""
        if envelope.type == EventType.ROUTING_DECIDED:
            await self.on_routing_decided(envelope, uow)
        elif envelope.type == EventType.ROUTING_CONFLICT:
            await self.on_routing_conflict(envelope, uow)
        elif envelope.type == EventType.ACTIVITY_LOGGED:
            await self.on_activity_logged(envelope, uow)
        elif envelope.type == EventType.HANDOFF_ACKNOWLEDGED:
            await self.on_handoff_acknowledged(envelope, uow)
        elif envelope.type == EventType.ALERT_DELIVERED:
            await self.on_alert_delivered(envelope, uow)
        elif envelope.type == EventType.HANDOFF_ACTION_TAKEN:
            await self.on_handoff_action_taken(envelope, uow)
        elif envelope.type == EventType.AVAILABILITY_CHANGED:
            # A new clock's calendar counts the person's time away and hours as now set.
            await record_change(uow.session, envelope.payload(AvailabilityChanged))

    async def on_routing_conflict(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """A handoff routed again and left without an owner (a conflict) stops its clock."""
        conflict = envelope.payload(RoutingConflict)
        if conflict.handoff_id is not None:
            await stop_unowned_clock(
                uow.session, handoff_id=conflict.handoff_id, at=conflict.occurred_at
            )

    async def on_routing_decided(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Start the clock of a routed handoff."""
        decision = envelope.payload(RoutingDecided)
        live = self.live
        directory = await live.current(uow.session) if live is not None else self.directory
        emitted = await start_handoff_clock(
            uow.session, decision, policy=self.policy, directory=directory
        )
        _emit(uow, emitted, envelope)

    async def on_activity_logged(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Stop clocks on a qualifying touch."""
        activity = envelope.payload(ActivityLogged)
        emitted = await log_activity(
            uow.session, activity, directory=self.directory, now=self.now()
        )
        _emit(uow, emitted, envelope)

    async def on_alert_delivered(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Note a cover who was alerted in the assignee's place."""
        delivered = envelope.payload(AlertDelivered)
        emitted = await note_cover(uow.session, delivered, directory=self.directory)
        _emit(uow, emitted, envelope)

    async def on_handoff_acknowledged(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Pause escalation of an acknowledged handoff."""
        ack = envelope.payload(HandoffAcknowledged)
        result = await acknowledge_handoff(
            uow.session, handoff_id=ack.handoff_id, person_id=ack.person_id, at=ack.acknowledged_at
        )
        if result is None:
            log.warning("acknowledgement of a handoff without a clock", handoff_id=ack.handoff_id)
            return
        _emit(uow, result[1], envelope)

    async def on_handoff_action_taken(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Follow the policy's clock effect: acknowledging or accepting pauses escalation; a
        handoff left unowned stops its clock; a new owner's routing decision restarts it
        (start_handoff_clock), so nothing is done here for that."""
        outcome = envelope.payload(HandoffActionOutcome)
        effect = clock_effect(outcome)
        if effect is ClockEffect.STOP:
            await stop_unowned_clock(
                uow.session,
                handoff_id=outcome.handoff_id,
                previous_assignee_id=outcome.previous_assignee_id,
                at=outcome.occurred_at,
            )
            return
        if effect is not ClockEffect.PAUSE:
            return
        result = await acknowledge_handoff(
            uow.session,
            handoff_id=outcome.handoff_id,
            person_id=outcome.actor_id,
            at=outcome.occurred_at,
        )
        if result is None:
            log.warning("action on a handoff without a clock", handoff_id=outcome.handoff_id)
            return
        _emit(uow, result[1], envelope)


def _emit(uow: UnitOfWork, emitted: list[Emission], cause: Envelope) -> None:
    if emitted:
        uow.emit_rows(emission_rows(emitted, causationid=cause.id))
