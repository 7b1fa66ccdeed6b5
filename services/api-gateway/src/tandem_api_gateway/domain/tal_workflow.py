"""The joint target-account-list (TAL) workflow as a pure state machine.

Marketing proposes an account; sales validates it (accept, reject, or accept at another tier,
always with a reason); then a marketing approver and a sales approver, two different people
since it is a joint decision, finalize it. The second approval yields the `TalFinalized` payload
to publish; removal yields `TalRemoved`. A rejected or removed account may be proposed again.
Changing the tier withdraws approvals already given: they were for the old tier.

Every function takes the current entry and returns a new one; `history` keeps every decision
(who, role, when, what, why). `TRANSITIONS` is the state table; anything outside it raises
`InvalidTransition` (HTTP 409), a role outside the policy `NotPermitted` (HTTP 403).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from tandem_api_gateway.domain.authz import (
    Operation,
    Principal,
    Role,
    Side,
    is_allowed,
    may_finalize_as,
)
from tandem_api_gateway.domain.errors import InvalidInput, InvalidTransition, NotPermitted
from tandem_shared.events import IntentItem, TalFinalized, TalRemoved, Tier


class TalStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"  # validated by sales; awaiting both approvals
    REJECTED = "rejected"
    FINALIZED = "finalized"
    REMOVED = "removed"


class TalAction(StrEnum):
    PROPOSE = "propose"
    ACCEPT = "accept"
    REJECT = "reject"
    CHANGE_TIER = "change_tier"
    FINALIZE = "finalize"  # one side's approval; the second one finalizes the entry
    REMOVE = "remove"


# action -> the statuses it applies to (None: no entry yet).
TRANSITIONS: dict[TalAction, frozenset[TalStatus | None]] = {
    TalAction.PROPOSE: frozenset({None, TalStatus.REJECTED, TalStatus.REMOVED}),
    TalAction.ACCEPT: frozenset({TalStatus.PROPOSED}),
    TalAction.REJECT: frozenset({TalStatus.PROPOSED, TalStatus.ACCEPTED}),
    TalAction.CHANGE_TIER: frozenset({TalStatus.PROPOSED, TalStatus.ACCEPTED}),
    TalAction.FINALIZE: frozenset({TalStatus.ACCEPTED}),
    TalAction.REMOVE: frozenset({TalStatus.FINALIZED}),
}


@dataclass(frozen=True, slots=True)
class Decision:
    """One step of an entry's history."""

    actor_id: str
    role: Role
    action: TalAction
    at: datetime
    reason: str
    side: Side | None = None  # for approvals
    tier: Tier | None = None  # the tier after this decision, when it set one


@dataclass(frozen=True, slots=True)
class Proposal:
    """What marketing brings when it proposes an account."""

    account_key: str
    suggested_tier: Tier
    reason: str
    name: str | None = None
    fit_score: float | None = None  # 0-100, from the fit model or the marketer's judgement
    intent: tuple[IntentItem, ...] = ()
    marketer_id: str | None = None
    territory: str | None = None


@dataclass(frozen=True, slots=True)
class TalEntry:
    """An account's place in the TAL workflow."""

    account_key: str
    status: TalStatus
    tier: Tier  # the suggested tier until sales validates, then the agreed one
    suggested_tier: Tier
    proposal_reason: str
    name: str | None = None
    fit_score: float | None = None
    intent: tuple[IntentItem, ...] = ()
    ae_id: str | None = None
    sdr_id: str | None = None
    marketer_id: str | None = None
    territory: str | None = None
    approvals: tuple[tuple[Side, str], ...] = ()  # (side, person id), at most one per side
    history: tuple[Decision, ...] = field(default_factory=tuple)

    def approver(self, side: Side) -> str | None:
        """Return who approved for this side, or None."""
        return next((pid for s, pid in self.approvals if s == side), None)


@dataclass(frozen=True, slots=True)
class Finalization:
    """The entry after one side's approval, and the event to publish once both approved."""

    entry: TalEntry
    finalized: TalFinalized | None


def propose(
    proposal: Proposal, *, actor: Principal, now: datetime, current: TalEntry | None = None
) -> TalEntry:
    """Propose an account for the TAL (new, or again after a rejection or removal)."""
    _require(actor, Operation.PROPOSE_TAL)
    _expect(current, TalAction.PROPOSE, proposal.account_key)
    reason = _reason(proposal.reason)
    if proposal.fit_score is not None and not 0 <= proposal.fit_score <= 100:
        raise InvalidInput(f"fit score must be within 0..100, got {proposal.fit_score}")
    if current is not None and current.account_key != proposal.account_key:
        raise InvalidInput("the proposal is for a different account than the current entry")
    decision = _decision(actor, TalAction.PROPOSE, now, reason, tier=proposal.suggested_tier)
    return TalEntry(
        account_key=proposal.account_key,
        status=TalStatus.PROPOSED,
        tier=proposal.suggested_tier,
        suggested_tier=proposal.suggested_tier,
        proposal_reason=reason,
        name=proposal.name,
        fit_score=proposal.fit_score,
        intent=proposal.intent,
        marketer_id=proposal.marketer_id,
        territory=proposal.territory,
        history=(*(current.history if current else ()), decision),
    )


def accept(
    entry: TalEntry,
    *,
    actor: Principal,
    now: datetime,
    reason: str,
    ae_id: str | None = None,
    sdr_id: str | None = None,
) -> TalEntry:
    """Accept a proposal at its suggested tier, optionally naming the AE and SDR."""
    _require(actor, Operation.VALIDATE_TAL)
    _expect(entry, TalAction.ACCEPT)
    decision = _decision(actor, TalAction.ACCEPT, now, _reason(reason), tier=entry.tier)
    return replace(
        entry,
        status=TalStatus.ACCEPTED,
        ae_id=ae_id or entry.ae_id,
        sdr_id=sdr_id or entry.sdr_id,
        history=(*entry.history, decision),
    )


def reject(entry: TalEntry, *, actor: Principal, now: datetime, reason: str) -> TalEntry:
    """Reject a proposal, before or after acceptance, as long as it is not finalized."""
    _require(actor, Operation.VALIDATE_TAL)
    _expect(entry, TalAction.REJECT)
    decision = _decision(actor, TalAction.REJECT, now, _reason(reason))
    return replace(
        entry, status=TalStatus.REJECTED, approvals=(), history=(*entry.history, decision)
    )


def change_tier(
    entry: TalEntry, *, actor: Principal, now: datetime, tier: Tier, reason: str
) -> TalEntry:
    """Accept a proposal at another tier; approvals already given are withdrawn."""
    _require(actor, Operation.VALIDATE_TAL)
    _expect(entry, TalAction.CHANGE_TIER)
    if tier == entry.tier:
        raise InvalidTransition(f"{entry.account_key} is already tier {tier.value}")
    decision = _decision(actor, TalAction.CHANGE_TIER, now, _reason(reason), tier=tier)
    # The approvers agreed to the old tier, not this one: they must approve again.
    return replace(
        entry,
        status=TalStatus.ACCEPTED,
        tier=tier,
        approvals=(),
        history=(*entry.history, decision),
    )


def finalize(
    entry: TalEntry, *, actor: Principal, side: Side, now: datetime, reason: str = ""
) -> Finalization:
    """Approve an accepted entry for one side; the second side's approval finalizes it."""
    _require(actor, Operation.FINALIZE_TAL)
    if not may_finalize_as(actor, side):
        raise NotPermitted(f"role {actor.role.value} may not finalize for {side.value}")
    _expect(entry, TalAction.FINALIZE)
    if entry.approver(side) is not None:
        raise InvalidTransition(f"{entry.account_key} is already approved for {side.value}")
    if any(pid == actor.person_id for _, pid in entry.approvals):
        raise InvalidTransition("one person cannot approve for both marketing and sales")
    decision = _decision(actor, TalAction.FINALIZE, now, reason.strip(), side=side)
    approved = replace(
        entry,
        approvals=(*entry.approvals, (side, actor.person_id)),
        history=(*entry.history, decision),
    )
    if any(approved.approver(s) is None for s in Side):
        return Finalization(entry=approved, finalized=None)
    final = replace(approved, status=TalStatus.FINALIZED)
    return Finalization(entry=final, finalized=_finalized_event(final, now))


def remove(
    entry: TalEntry, *, actor: Principal, now: datetime, reason: str
) -> tuple[TalEntry, TalRemoved]:
    """Take a finalized account off the TAL; either side (or an admin) may."""
    _require(actor, Operation.REMOVE_FROM_TAL)
    _expect(entry, TalAction.REMOVE)
    why = _reason(reason)
    decision = _decision(actor, TalAction.REMOVE, now, why)
    removed = replace(
        entry, status=TalStatus.REMOVED, approvals=(), history=(*entry.history, decision)
    )
    event = TalRemoved(
        account_key=entry.account_key, decided_by=[actor.person_id], reason=why, removed_at=now
    )
    return removed, event


def _finalized_event(entry: TalEntry, now: datetime) -> TalFinalized:
    return TalFinalized(
        account_key=entry.account_key,
        name=entry.name,
        tier=entry.tier,
        ae_id=entry.ae_id,
        sdr_id=entry.sdr_id,
        marketer_id=entry.marketer_id,
        territory=entry.territory,
        decided_by=[pid for side in Side if (pid := entry.approver(side)) is not None],
        reason=entry.proposal_reason,
        finalized_at=now,
    )


def _require(actor: Principal, operation: Operation) -> None:
    if not is_allowed(actor, operation):
        raise NotPermitted(f"role {actor.role.value} may not {operation.value.replace('_', ' ')}")


def _expect(entry: TalEntry | None, action: TalAction, account_key: str | None = None) -> None:
    status = entry.status if entry is not None else None
    if status in TRANSITIONS[action]:
        return
    key = entry.account_key if entry is not None else account_key
    state = status.value if status is not None else "not on the workflow"
    allowed = " or ".join(sorted(s.value if s else "new" for s in TRANSITIONS[action]))
    raise InvalidTransition(f"cannot {action.value} {key}: it is {state}, expected {allowed}")


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidInput("a reason is required for this TAL decision")
    return text


def _decision(
    actor: Principal,
    action: TalAction,
    at: datetime,
    reason: str,
    *,
    side: Side | None = None,
    tier: Tier | None = None,
) -> Decision:
    return Decision(
        actor_id=actor.person_id,
        role=actor.role,
        action=action,
        at=at,
        reason=reason,
        side=side,
        tier=tier,
    )
