"""Actions on a handoff (accept, reject, hand on, assign, ...): the router's authoritative answer.

The router owns who owns what, so it checks every request with the shared policy against its own
state and answers with one outcome event (taken or refused). A change of owner is a new routing
decision, exactly like the first one: the SLA monitor restarts the clock for the new assignee,
alerts tells them, the gateway's read model follows. Ids derive from the request's event id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tandem_router.domain import messages
from tandem_router.domain.apply import record_handoff
from tandem_router.domain.context import build_context
from tandem_router.domain.decide import Decision, decide, record_url
from tandem_router.domain.matching import AccountMatch
from tandem_router.domain.model import AccountState, HandoffRecord, RoundRobinState
from tandem_router.domain.rules import RuleSet
from tandem_shared.directory import Directory, Person
from tandem_shared.events import (
    HandoffAction,
    HandoffActionOutcome,
    HandoffActionRequested,
    HandoffReassignRequested,
    HandOnTo,
    MatchInfo,
    RoutingDecided,
)
from tandem_shared.handoff_policy import COVER, HandoffFacts, Verdict, authorize

A = HandoffAction


@dataclass(frozen=True)
class ActionDecision:
    """The outcome to publish and, when the action changed something, what to save and emit."""

    outcome: HandoffActionOutcome
    decision: Decision | None = None  # state, routing and alerts, as for any routed event


def facts_of(
    request: HandoffActionRequested,
    state: AccountState | None,
    *,
    closed: bool,
    rules: RuleSet,
) -> HandoffFacts:
    """Return what the policy needs, from the account's state and the handoff's row."""
    record = state.handoff(request.handoff_id) if state is not None else None
    if state is None or record is None:
        return HandoffFacts(handoff_id=request.handoff_id, assignee_id=None, known=False)
    owners = tuple(p for p in (state.ae_id, state.sdr_id) if p)
    return HandoffFacts(
        handoff_id=record.handoff_id,
        assignee_id=record.assignee_id,
        owner_ids=owners,
        escalation_manager_id=rules.escalation_manager_id,
        acknowledged_by=record.acknowledged_by,
        accepted_by=record.accepted_by,
        closed=closed,
    )


def decide_action(
    *,
    event_id: str,
    request: HandoffActionRequested,
    state: AccountState | None,
    closed: bool,
    directory: Directory,
    round_robin: RoundRobinState,
    open_handoffs: Mapping[str, int],
    rules: RuleSet,
    now: datetime,
) -> ActionDecision:
    """Check the request with the shared policy and work out its effect."""
    facts = facts_of(request, state, closed=closed, rules=rules)
    verdict = authorize(
        action=request.action,
        actor_id=request.actor_id,
        facts=facts,
        directory=directory,
        hand_on_to=request.hand_on_to,
        target_id=request.target_id,
    )
    if not verdict.allowed or state is None:
        return ActionDecision(_outcome(request, state, facts, verdict, now=now))
    record = state.handoff(request.handoff_id)
    assert record is not None  # facts said known
    target = _direct_target(request, record, directory, verdict)
    if request.action in (A.ACKNOWLEDGE, A.ACCEPT) and target is None:
        field = "acknowledged_by" if request.action is A.ACKNOWLEDGE else "accepted_by"
        updated = record.model_copy(update={field: request.actor_id})
        new_state = record_handoff(state, updated, retention=rules.retention)
        decision = Decision(new_state, round_robin)
        return ActionDecision(_outcome(request, state, facts, verdict, now=now), decision)
    if target is not None:
        decision = _assign_to(event_id, request, state, record, target, rules=rules, now=now)
    else:  # reject, or hand on to the pool: routed again, without the one who let it go
        decision = _reroute(
            event_id, request, state, record, directory, round_robin, open_handoffs, rules, now
        )
    routing = decision.routing
    outcome = _outcome(
        request,
        state,
        facts,
        verdict,
        now=now,
        assignee_id=routing.assignee_id if routing else None,
        decision_id=routing.decision_id if routing else None,
    )
    return ActionDecision(outcome, decision)


def _direct_target(
    request: HandoffActionRequested,
    record: HandoffRecord,
    directory: Directory,
    verdict: Verdict,
) -> Person | None:
    """Return who gets the handoff by name (None: nobody new, or the pool decides)."""
    action = request.action
    if action is A.ACCEPT:
        # A cover who accepts takes the handoff over; the assignee accepting keeps it.
        is_assignee = request.actor_id == record.assignee_id
        return (
            directory.get(request.actor_id)
            if COVER in verdict.relations and not is_assignee
            else None
        )
    if action is A.HAND_ON and request.hand_on_to is HandOnTo.COVER:
        assignee = directory.get(record.assignee_id or "")
        return directory.get(assignee.cover_id) if assignee and assignee.cover_id else None
    named = action is A.HAND_ON and request.hand_on_to is HandOnTo.PERSON
    if named or action in (A.ASSIGN, A.REASSIGN):
        return directory.get(request.target_id or "")
    return None


def _assign_to(
    event_id: str,
    request: HandoffActionRequested,
    state: AccountState,
    record: HandoffRecord,
    person: Person,
    *,
    rules: RuleSet,
    now: datetime,
) -> Decision:
    """Give the handoff to a named person: a routing decision and their handoff alert."""
    verb = _verb(request)
    why = f"{verb} by {request.actor_id} via {request.via}"
    if record.assignee_id:
        why += f" (from {record.assignee_id})"
    context = build_context(state, signal=record.signal, signal_explanation=why, now=now)
    accepted = person.id if request.action is A.ACCEPT else None
    crm_url = record_url(None, state)  # the new owner's alert opens the record too
    basics = messages.AlertBasics(
        event_id=event_id,
        account_key=state.account_key,
        account_name=state.name,
        tier=record.tier,
        signal=record.signal,
        handoff_id=record.handoff_id,
        summary=why,
        context=context,
        crm_url=crm_url,
        now=now,
    )
    routing = RoutingDecided(
        decision_id=messages.stable_id(event_id, "decision"),
        handoff_id=record.handoff_id,
        account_key=state.account_key,
        account_name=state.name,
        tier=record.tier,
        in_tal=state.in_tal,
        signal=record.signal,
        assignee_id=person.id,
        assignee_role=person.role.value,
        match=MatchInfo(method="domain", matched_value=state.account_key),
        rule_set_version=rules.version,
        explanation=[f"rule set {rules.version}", f"action: {why}", f"{person.id} named"],
        context=context,
        decided_at=now,
        crm_url=crm_url,
        accepted_by=accepted,
    )
    urgency = rules.urgency_for(record.tier, record.signal)
    alert = messages.handoff_alert(basics, person, urgency=urgency, reason=why)
    updated = HandoffRecord(
        handoff_id=record.handoff_id,
        signal=record.signal,
        tier=record.tier,
        assignee_id=person.id,
        decided_at=now,
        accepted_by=accepted,
    )
    new_state = record_handoff(state, updated, retention=rules.retention)
    # An accepting cover already knows: no alert to tell them what they just did.
    alerts = () if accepted else (alert,)
    return Decision(new_state, RoundRobinState(), routing, (), alerts)


def _reroute(
    event_id: str,
    request: HandoffActionRequested,
    state: AccountState,
    record: HandoffRecord,
    directory: Directory,
    round_robin: RoundRobinState,
    open_handoffs: Mapping[str, int],
    rules: RuleSet,
    now: datetime,
) -> Decision:
    """Route the handoff again, to anyone but its current owner (reject, back to the pool)."""
    why = _verb(request)
    if request.reason is not None:
        why += f" ({request.reason.value.replace('_', ' ')})"
    if request.note:
        why += f": {request.note}"
    reassign = HandoffReassignRequested(
        handoff_id=record.handoff_id,
        account_key=state.account_key,
        previous_assignee_id=record.assignee_id or "",
        tier=record.tier,
        signal=record.signal,
        reason=f"{why} by {request.actor_id} via {request.via}",
        requested_at=now,
    )
    decision = decide(
        event_id=event_id,
        event=reassign,
        match=AccountMatch(state.account_key, MatchInfo(method="domain"), "the handoff's account"),
        state=state,
        directory=directory,
        round_robin=round_robin,
        open_handoffs=open_handoffs,
        rules=rules,
        now=now,
    )
    return decision


def _describe(request: HandoffActionRequested) -> str:
    """Say what was done in words, with the reason of a reject."""
    text = _verb(request).capitalize()
    if request.reason is not None:
        text += f" ({request.reason.value.replace('_', ' ')})"
    if request.note:
        text += f": {request.note}"
    return text


def _verb(request: HandoffActionRequested) -> str:
    if request.action is A.HAND_ON:
        to = request.hand_on_to.value if request.hand_on_to else "someone"
        return f"handed on to {request.target_id if to == 'person' else 'the ' + to}"
    return {
        A.ACCEPT: "accepted",
        A.REJECT: "rejected",
        A.ASSIGN: "assigned",
        A.REASSIGN: "reassigned",
        A.ACKNOWLEDGE: "acknowledged",
    }[request.action]


def _outcome(
    request: HandoffActionRequested,
    state: AccountState | None,
    facts: HandoffFacts,
    verdict: Verdict,
    *,
    now: datetime,
    assignee_id: str | None = None,
    decision_id: str | None = None,
) -> HandoffActionOutcome:
    changed_owner = decision_id is not None or request.action in (A.REJECT, A.HAND_ON)
    return HandoffActionOutcome(
        action_id=request.action_id,
        handoff_id=request.handoff_id,
        account_key=state.account_key if state is not None else None,
        action=request.action,
        actor_id=request.actor_id,
        via=request.via,
        taken=verdict.allowed,
        code=verdict.code,
        message=verdict.message or f"{_describe(request)}.",
        previous_assignee_id=facts.assignee_id,
        assignee_id=assignee_id if changed_owner and verdict.allowed else facts.assignee_id,
        decision_id=decision_id,
        reason=request.reason,
        note=request.note,
        occurred_at=now,
    )
