"""The router's answer to actions on a handoff: check, apply, publish the outcome.

The router owns assignments, so it is where a request is checked for good (channels only check
first with what they know). The account row is locked like for any routed event, so two people
acting on one handoff at once are decided one after the other: the second sees the first's effect.
"""

from __future__ import annotations

import structlog

from tandem_router.adapters import handoff_rows, repository
from tandem_router.adapters.held import held
from tandem_router.config import RouterConfig
from tandem_router.domain import messages
from tandem_router.domain.actions import decide_action
from tandem_router.domain.model import RoundRobinState
from tandem_router.handlers import SOURCE, record_outcome, roster, save_decision
from tandem_shared import topics
from tandem_shared.availability import record_change
from tandem_shared.consumer import UnitOfWork
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AvailabilityChanged,
    EventType,
    HandoffAction,
    HandoffActionRequested,
    HandOnTo,
)

log = structlog.get_logger(__name__)

# Actions that may route the handoff again through the pools (they need the live roster).
_REROUTES = {HandoffAction.REJECT}


async def on_action_requested(envelope: Envelope, uow: UnitOfWork, config: RouterConfig) -> None:
    """Decide one action request and publish whether it was taken, with its effects."""
    request = envelope.payload(HandoffActionRequested)
    session, now = uow.session, envelope.time
    memory = held(session)
    key = envelope.subject
    state = None
    if key:
        state = memory.accounts.get(key) or await repository.lock_account(session, key)
        memory.accounts[key] = state
    closed = await handoff_rows.is_closed(session, request.handoff_id)
    rerouting = request.action in _REROUTES or (
        request.action is HandoffAction.HAND_ON and request.hand_on_to is HandOnTo.POOL
    )
    round_robin, open_handoffs = RoundRobinState(), dict[str, int]()
    if rerouting:
        round_robin, open_handoffs = await roster(session, memory, config.rules)
    result = decide_action(
        event_id=envelope.id,
        request=request,
        state=state,
        closed=closed,
        directory=await config.live.current(session),
        round_robin=round_robin,
        open_handoffs=open_handoffs,
        rules=config.rules,
        now=now,
    )
    decision = result.decision
    if decision is not None:
        # Not archived: actions are people's choices, not routing inputs a what-if replays.
        await save_decision(
            session,
            envelope,
            decision,
            key=key,
            before=round_robin,
            locked=rerouting,
            archive=False,
        )
        if decision.routing is not None:
            memory.open_handoffs = None  # one rep's count fell, another's rose: read them again
        record_outcome(envelope, uow, decision, subject=key)
    outcome = result.outcome
    kind = EventType.HANDOFF_ACTION_TAKEN if outcome.taken else EventType.HANDOFF_ACTION_REFUSED
    uow.emit(
        topics.HANDOFF_ACTIONS,
        Envelope.wrap(
            outcome,
            type=kind,
            source=SOURCE,
            subject=key,
            id=messages.stable_id(envelope.id, "outcome"),
            time=now,
            causationid=envelope.id,
        ),
    )
    log.info(
        "handoff action",
        handoff_id=request.handoff_id,
        action=request.action.value,
        actor=request.actor_id,
        taken=outcome.taken,
        code=outcome.code,
    )


async def on_availability_changed(
    envelope: Envelope, uow: UnitOfWork, config: RouterConfig
) -> None:
    """Store a person's run-time availability: the next decision routes with it."""
    change = await record_change(uow.session, envelope.payload(AvailabilityChanged))
    log.info("availability changed", person=change.person_id)
