"""The router's consumers: locate the account, lock its state, decide, save and emit.

Each handler runs inside the consumer runtime's transaction (inbox row, writes, outbox rows), so a
decision's state, its round-robin step, its handoff and its events commit together or not at all.
The envelope's `time` is the decision's `now`, so reprocessing an event decides the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_router.adapters import repository, writes
from tandem_router.adapters.held import Held, held
from tandem_router.adapters.names import NameIndex
from tandem_router.config import RouterConfig
from tandem_router.domain import messages
from tandem_router.domain.apply import RouterEvent
from tandem_router.domain.decide import Decision, decide, may_hand_off
from tandem_router.domain.matching import (
    AccountIndex,
    AccountMatch,
    AccountRef,
    event_clues,
    locate_account,
)
from tandem_router.domain.model import AccountState, RoundRobinState
from tandem_router.domain.rules import RuleSet
from tandem_shared import topics
from tandem_shared.consumer import Handler, UnitOfWork
from tandem_shared.envelope import EncodedEnvelope, Envelope, encode_envelope
from tandem_shared.events import PAYLOADS, EventType, HandoffReassignRequested, SlaEvent
from tandem_shared.outbox import outbox_rows

SOURCE = "/router"

TOPICS = (
    topics.PEOPLE,
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


# The name index survives events; each fallback to names still reads the names themselves.
_NAMES = NameIndex()


async def locate(
    session: AsyncSession, event: RouterEvent, *, threshold: float, memory: Held
) -> tuple[AccountMatch, AccountState | None]:
    """Match an event to an account and lock it: by its clues first, then by company name."""
    clues = event_clues(event)
    candidates = await repository.lock_candidates(session, clues, held=memory.accounts)
    refs = [AccountRef.of(state) for state in candidates.values()]
    match = locate_account(event, AccountIndex.build(refs), fuzzy_threshold=threshold)
    if not match.matched and clues.company_name:
        names = await repository.account_names(session)
        named = (AccountRef(account_key=key, name=name) for key, name in names.items())
        index = AccountIndex.build([*refs, *named]) if refs else _NAMES.index(names)
        match = locate_account(event, index, fuzzy_threshold=threshold)
    key = match.account_key
    if key is None:
        return match, None
    state = memory.accounts.get(key)
    if state is None:
        state = await repository.lock_account(session, key, new=not match.matched)
        memory.accounts[key] = state
    return match, state


async def roster(
    session: AsyncSession, memory: Held, rules: RuleSet
) -> tuple[RoundRobinState, dict[str, int]]:
    """Return the pools' state and the open handoffs, locked once per transaction."""
    if memory.round_robin is None:
        memory.round_robin = await repository.lock_round_robin(session, list(rules.pools))
        memory.open_handoffs = None
    if memory.open_handoffs is None:
        memory.open_handoffs = await repository.open_handoff_counts(session)
    return memory.round_robin, memory.open_handoffs


async def route_event(envelope: Envelope, uow: UnitOfWork, config: RouterConfig) -> None:
    """Decide one routed event: update the account, hand off on a signal, publish the outcome."""
    session, rules = uow.session, config.rules
    memory = held(session)
    now = envelope.time
    event = router_event(envelope)
    match, state = await locate(session, event, threshold=rules.fuzzy_threshold, memory=memory)
    key = match.account_key
    round_robin, open_handoffs = RoundRobinState(), dict[str, int]()
    locked = may_hand_off(event=event, state=state, rules=rules, now=now)
    directory = config.directory
    if locked:
        round_robin, open_handoffs = await roster(session, memory, rules)
        directory = await config.live.current(session)  # who is away, covers, capacity now
    decision = decide(
        event_id=envelope.id,
        event=event,
        match=match,
        state=state,
        directory=directory,
        round_robin=round_robin,
        open_handoffs=open_handoffs,
        rules=rules,
        now=now,
    )
    await save_decision(session, envelope, decision, key=key, before=round_robin, locked=locked)
    if decision.routing is not None:
        if isinstance(event, HandoffReassignRequested):
            memory.open_handoffs = None  # the previous assignee's count: read it again
        else:
            memory.count_opened(decision.routing.assignee_id)
    record_outcome(envelope, uow, decision, subject=key or envelope.subject)


async def save_decision(
    session: AsyncSession,
    envelope: Envelope,
    decision: Decision,
    *,
    key: str | None,
    before: RoundRobinState,
    locked: bool,
    archive: bool = True,
) -> None:
    """Write a decision's account, changed pools and routing in one statement, and keep them as
    this transaction's own (`locked`: the pools were locked, so their new state is ours)."""
    changed_pools = {
        name: pool
        for name, pool in decision.round_robin.pools.items()
        if locked and before.pools.get(name) != pool
    }
    await writes.write_event(
        session,
        writes.EventWrites(
            event_id=envelope.id,
            event_type=envelope.type,
            payload=envelope.data,
            occurred_at=envelope.time,
            archived_key=key,
            account=decision.state,
            pools=changed_pools,
            routing=decision.routing,
            archive=archive,
        ),
    )
    memory = held(session)
    if decision.state is not None and key:
        memory.accounts[key] = decision.state
    if locked:
        memory.round_robin = decision.round_robin


def record_outcome(
    envelope: Envelope, uow: UnitOfWork, decision: Decision, *, subject: str | None
) -> None:
    """Emit the routing decision, conflicts and alerts (their rows are written by write_event)."""

    def encoded(payload: Any, type: EventType, event_id: str) -> EncodedEnvelope:
        # The bytes Envelope.wrap(...).to_bytes() writes, without building the envelope.
        return encode_envelope(
            payload,
            type=type,
            source=SOURCE,
            subject=subject,
            id=event_id,
            time=envelope.time,
            causationid=envelope.id,
        )

    events: list[tuple[str, EncodedEnvelope]] = []
    routing = decision.routing
    if routing is not None:
        events.append(
            (topics.ROUTING, encoded(routing, EventType.ROUTING_DECIDED, routing.decision_id))
        )
    for index, conflict in enumerate(decision.conflicts):
        conflict_id = messages.stable_id(envelope.id, "conflict", str(index))
        events.append((topics.ROUTING, encoded(conflict, EventType.ROUTING_CONFLICT, conflict_id)))
    for alert in decision.alerts:
        events.append(
            (topics.ALERT_REQUESTS, encoded(alert, EventType.ALERT_REQUESTED, alert.alert_id))
        )
    if events:
        uow.emit_rows(outbox_rows(events))


async def on_sla_met(envelope: Envelope, uow: UnitOfWork, config: RouterConfig) -> None:
    """Close a handoff once sales touched it: it no longer counts against the rep's capacity."""
    sla = envelope.payload(SlaEvent)
    session = uow.session
    assignee = await repository.close_handoff(session, handoff_id=sla.handoff_id, at=envelope.time)
    if assignee is not None:
        held(session).count_closed(assignee)
    # Archived so a what-if replay frees the rep's capacity when it was freed live.
    await writes.write_event(
        session,
        writes.EventWrites(
            event_id=envelope.id,
            event_type=envelope.type,
            payload=envelope.data,
            occurred_at=envelope.time,
            archived_key=sla.account_key,
        ),
    )


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


def build_handler(config: RouterConfig, extra: dict[str, EventHandler] | None = None) -> Handler:
    """Return the consumer handler of the router's topics, bound to its configuration."""
    handlers = {**HANDLERS, **(extra or {})}

    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        handler = handlers.get(envelope.type)
        # The router's topics also carry events it has no use for (deals, other SLA steps).
        if handler is not None:
            await handler(envelope, uow, config)

    return handle
