"""The router's consumers: locate the account, lock its state, decide, save and emit.

Each handler runs inside the consumer runtime's transaction (inbox row, writes, outbox rows), so a
decision's state, its round-robin step, its handoff and its events commit together or not at all.
The envelope's `time` is the decision's `now`, so reprocessing an event decides the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_router.adapters import repository
from tandem_router.config import RouterConfig
from tandem_router.domain import messages
from tandem_router.domain.apply import RouterEvent
from tandem_router.domain.decide import Decision, decide, may_hand_off
from tandem_router.domain.matching import AccountIndex, AccountMatch, event_clues, locate_account
from tandem_router.domain.model import RoundRobinState
from tandem_shared import topics
from tandem_shared.consumer import Handler, UnitOfWork
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    PAYLOADS,
    EventType,
    SlaEvent,
)

SOURCE = "/router"

TOPICS = (
    topics.CRM,
    topics.ENGAGEMENT,
    topics.INTENT,
    topics.TAL,
    topics.HANDOFF_ACTIONS,
    topics.SLA,
)

EventHandler = Callable[[Envelope, UnitOfWork, RouterConfig], Awaitable[None]]


def router_event(envelope: Envelope) -> RouterEvent:
    """Return the canonical payload of a routed envelope."""
    payload: Any = envelope.payload(PAYLOADS[envelope.type])
    event: RouterEvent = payload
    return event


async def locate(session: AsyncSession, event: RouterEvent, *, threshold: float) -> AccountMatch:
    """Match an event to an account, searching by its clues before falling back to names."""
    clues = event_clues(event)
    candidates = await repository.candidate_refs(session, clues)
    match = locate_account(event, AccountIndex.build(candidates), fuzzy_threshold=threshold)
    if match.matched or not clues.company_name:
        return match
    everyone = [*candidates, *await repository.named_refs(session)]
    return locate_account(event, AccountIndex.build(everyone), fuzzy_threshold=threshold)


async def route_event(envelope: Envelope, uow: UnitOfWork, config: RouterConfig) -> None:
    """Decide one routed event: update the account, hand off on a signal, publish the outcome."""
    session, rules = uow.session, config.rules
    now = envelope.time
    event = router_event(envelope)
    match = await locate(session, event, threshold=rules.fuzzy_threshold)
    key = match.account_key
    state = await repository.lock_account(session, key) if key is not None else None
    round_robin, open_handoffs = RoundRobinState(), {}
    locked = may_hand_off(event=event, state=state, rules=rules, now=now)
    if locked:
        round_robin = await repository.lock_round_robin(session, list(rules.pools))
        open_handoffs = await repository.open_handoff_counts(session)
    decision = decide(
        event_id=envelope.id,
        event=event,
        match=match,
        state=state,
        directory=config.directory,
        round_robin=round_robin,
        open_handoffs=open_handoffs,
        rules=rules,
        now=now,
    )
    if decision.state is not None:
        await repository.save_account(session, decision.state)
    if locked:
        await repository.save_round_robin(session, before=round_robin, after=decision.round_robin)
    await archive(session, envelope, account_key=key)
    await record_outcome(envelope, uow, decision, subject=key or envelope.subject)


async def archive(session: AsyncSession, envelope: Envelope, *, account_key: str | None) -> None:
    """Keep an input for what-if replays, at the time it was decided."""
    await repository.archive_event(
        session,
        event_id=envelope.id,
        event_type=envelope.type,
        account_key=account_key,
        payload=envelope.data,
        occurred_at=envelope.time,
    )


async def record_outcome(
    envelope: Envelope, uow: UnitOfWork, decision: Decision, *, subject: str | None
) -> None:
    """Record the handoff and decision, and emit routing, conflicts and alerts."""

    def wrap(payload: Any, type: EventType, event_id: str) -> Envelope:
        return Envelope.wrap(
            payload,
            type=type,
            source=SOURCE,
            subject=subject,
            id=event_id,
            time=envelope.time,
            causationid=envelope.id,
        )

    routing = decision.routing
    if routing is not None:
        await repository.open_handoff(uow.session, routing)
        await repository.record_decision(uow.session, event_id=envelope.id, routing=routing)
        uow.emit(topics.ROUTING, wrap(routing, EventType.ROUTING_DECIDED, routing.decision_id))
    for index, conflict in enumerate(decision.conflicts):
        conflict_id = messages.stable_id(envelope.id, "conflict", str(index))
        uow.emit(topics.ROUTING, wrap(conflict, EventType.ROUTING_CONFLICT, conflict_id))
    for alert in decision.alerts:
        uow.emit(topics.ALERT_REQUESTS, wrap(alert, EventType.ALERT_REQUESTED, alert.alert_id))


async def on_sla_met(envelope: Envelope, uow: UnitOfWork, config: RouterConfig) -> None:
    """Close a handoff once sales touched it: it no longer counts against the rep's capacity."""
    sla = envelope.payload(SlaEvent)
    await repository.close_handoff(uow.session, handoff_id=sla.handoff_id, at=envelope.time)
    # Archived so a what-if replay frees the rep's capacity when it was freed live.
    await archive(uow.session, envelope, account_key=sla.account_key)


# Every routed event goes through one decision; what each kind contributes to it:
HANDLERS: dict[str, EventHandler] = {
    EventType.ACCOUNT_UPSERTED: route_event,  # tier, owners, territory, aliases
    EventType.CONTACT_UPSERTED: route_event,  # a new contact or lead is an inbound handoff
    EventType.LEAD_UPSERTED: route_event,
    EventType.ACTIVITY_LOGGED: route_event,  # sales activity goes into the handoff context
    EventType.ENGAGEMENT_RECORDED: route_event,  # meeting requests, spikes, several contacts
    EventType.INTENT_OBSERVED: route_event,  # a surge hands off
    EventType.TAL_FINALIZED: route_event,  # the gateway's TAL workflow decisions
    EventType.TAL_REMOVED: route_event,
    EventType.HANDOFF_REASSIGN_REQUESTED: route_event,  # to anyone but the previous assignee
    EventType.SLA_MET: on_sla_met,
}


def build_handler(config: RouterConfig) -> Handler:
    """Return the consumer handler of the router's topics, bound to its configuration."""

    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        handler = HANDLERS.get(envelope.type)
        # The router's topics also carry events it has no use for (deals, other SLA steps).
        if handler is not None:
            await handler(envelope, uow, config)

    return handle
