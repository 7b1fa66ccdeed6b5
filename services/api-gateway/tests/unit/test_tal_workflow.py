"""The joint TAL workflow: every transition, valid and invalid, with roles and history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tandem_api_gateway.domain.authz import Principal, Role, Side
from tandem_api_gateway.domain.errors import InvalidInput, InvalidTransition, NotPermitted
from tandem_api_gateway.domain.tal_workflow import (
    TRANSITIONS,
    Proposal,
    TalAction,
    TalEntry,
    TalStatus,
    accept,
    change_tier,
    finalize,
    propose,
    reject,
    remove,
)
from tandem_shared.events import IntentItem, TalFinalized, Tier

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
MIA = Principal(person_id="mia.marketing", role=Role.MARKETING)
SAM = Principal(person_id="sam.manager", role=Role.SALES)
OPS = Principal(person_id="ria.revops", role=Role.REVOPS_ADMIN)
OPS2 = Principal(person_id="olu.revops", role=Role.REVOPS_ADMIN)
AVA = Principal(person_id="ava.ae", role=Role.REP)

PROPOSAL = Proposal(
    account_key="acme.com",
    suggested_tier=Tier.T2,
    reason="ICP fit, surging on CRM topics",
    name="Acme Corporation",
    fit_score=87.5,
    intent=(IntentItem(provider="bombora", topic="CRM Software", score=82, surging=True),),
    marketer_id="mia.marketing",
    territory="na-east",
)


def later(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def proposed() -> TalEntry:
    return propose(PROPOSAL, actor=MIA, now=NOW)


def accepted() -> TalEntry:
    return accept(proposed(), actor=SAM, now=later(1), reason="fits territory", ae_id="ava.ae")


def finalized() -> TalEntry:
    half = finalize(accepted(), actor=MIA, side=Side.MARKETING, now=later(2)).entry
    return finalize(half, actor=SAM, side=Side.SALES, now=later(3), reason="agreed").entry


def rejected() -> TalEntry:
    return reject(proposed(), actor=SAM, now=later(1), reason="existing customer")


def removed() -> TalEntry:
    entry, _ = remove(finalized(), actor=SAM, now=later(4), reason="acquired by a competitor")
    return entry


BUILDERS: dict[TalStatus, Callable[[], TalEntry]] = {
    TalStatus.PROPOSED: proposed,
    TalStatus.ACCEPTED: accepted,
    TalStatus.REJECTED: rejected,
    TalStatus.FINALIZED: finalized,
    TalStatus.REMOVED: removed,
}


def act(action: TalAction, entry: TalEntry) -> object:
    """Perform an action on an entry as a revops admin, who may do everything."""
    match action:
        case TalAction.PROPOSE:
            return propose(PROPOSAL, actor=OPS, now=later(9), current=entry)
        case TalAction.ACCEPT:
            return accept(entry, actor=OPS, now=later(9), reason="ok")
        case TalAction.REJECT:
            return reject(entry, actor=OPS, now=later(9), reason="no")
        case TalAction.CHANGE_TIER:
            return change_tier(entry, actor=OPS, now=later(9), tier=Tier.T1, reason="bigger")
        case TalAction.FINALIZE:
            return finalize(entry, actor=OPS2, side=Side.SALES, now=later(9))
        case TalAction.REMOVE:
            return remove(entry, actor=OPS, now=later(9), reason="churned")


def test_every_status_is_reachable_by_the_builders() -> None:
    assert {status: build().status for status, build in BUILDERS.items()} == {
        s: s for s in TalStatus
    }


@pytest.mark.parametrize("status", list(TalStatus))
@pytest.mark.parametrize("action", list(TalAction))
def test_transition_table_is_enforced(status: TalStatus, action: TalAction) -> None:
    entry = BUILDERS[status]()
    if status in TRANSITIONS[action]:
        act(action, entry)
    else:
        with pytest.raises(InvalidTransition, match=f"cannot {action.value} acme.com"):
            act(action, entry)


def test_proposal_records_what_marketing_brought() -> None:
    entry = proposed()
    assert (entry.status, entry.tier, entry.suggested_tier) == (
        TalStatus.PROPOSED,
        Tier.T2,
        Tier.T2,
    )
    assert entry.fit_score == 87.5 and entry.intent[0].surging
    (decision,) = entry.history
    assert (decision.actor_id, decision.role, decision.action, decision.at) == (
        "mia.marketing",
        Role.MARKETING,
        TalAction.PROPOSE,
        NOW,
    )
    assert decision.reason == "ICP fit, surging on CRM topics"


def test_both_sides_finalize_and_the_second_yields_the_event() -> None:
    first = finalize(accepted(), actor=SAM, side=Side.SALES, now=later(2))
    assert first.finalized is None and first.entry.status is TalStatus.ACCEPTED
    second = finalize(first.entry, actor=MIA, side=Side.MARKETING, now=later(3))
    assert second.entry.status is TalStatus.FINALIZED
    assert second.finalized == TalFinalized(
        account_key="acme.com",
        name="Acme Corporation",
        tier=Tier.T2,
        ae_id="ava.ae",
        marketer_id="mia.marketing",
        territory="na-east",
        decided_by=["mia.marketing", "sam.manager"],
        reason="ICP fit, surging on CRM topics",
        finalized_at=later(3),
    )


def test_history_keeps_every_decision_in_order_across_a_re_proposal() -> None:
    entry = propose(PROPOSAL, actor=MIA, now=later(5), current=removed())
    actions = [d.action for d in entry.history]
    assert actions == [
        TalAction.PROPOSE,
        TalAction.ACCEPT,
        TalAction.FINALIZE,
        TalAction.FINALIZE,
        TalAction.REMOVE,
        TalAction.PROPOSE,
    ]
    assert [d.side for d in entry.history if d.action is TalAction.FINALIZE] == [
        Side.MARKETING,
        Side.SALES,
    ]
    assert entry.status is TalStatus.PROPOSED and entry.approvals == ()


def test_change_tier_accepts_at_the_new_tier_and_withdraws_approvals() -> None:
    half = finalize(accepted(), actor=MIA, side=Side.MARKETING, now=later(2)).entry
    changed = change_tier(half, actor=SAM, now=later(3), tier=Tier.T1, reason="3 open opps")
    assert (changed.status, changed.tier, changed.suggested_tier) == (
        TalStatus.ACCEPTED,
        Tier.T1,
        Tier.T2,
    )
    assert changed.approvals == ()
    assert changed.history[-1].tier is Tier.T1


def test_change_tier_to_the_same_tier_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="already tier 2"):
        change_tier(proposed(), actor=SAM, now=later(1), tier=Tier.T2, reason="same")


def test_removal_yields_the_event() -> None:
    entry, event = remove(finalized(), actor=MIA, now=later(4), reason="out of ICP")
    assert entry.status is TalStatus.REMOVED
    assert (event.account_key, event.decided_by, event.reason, event.removed_at) == (
        "acme.com",
        ["mia.marketing"],
        "out of ICP",
        later(4),
    )


def test_one_side_cannot_approve_twice() -> None:
    half = finalize(accepted(), actor=MIA, side=Side.MARKETING, now=later(2)).entry
    other_marketer = Principal(person_id="max.marketing", role=Role.MARKETING)
    with pytest.raises(InvalidTransition, match="already approved for marketing"):
        finalize(half, actor=other_marketer, side=Side.MARKETING, now=later(3))


def test_one_person_cannot_approve_for_both_sides() -> None:
    half = finalize(accepted(), actor=OPS, side=Side.MARKETING, now=later(2)).entry
    with pytest.raises(InvalidTransition, match="one person cannot approve for both"):
        finalize(half, actor=OPS, side=Side.SALES, now=later(3))


@pytest.mark.parametrize(
    ("actor", "side"),
    [(MIA, Side.SALES), (SAM, Side.MARKETING), (AVA, Side.SALES)],
)
def test_roles_finalize_only_for_their_side(actor: Principal, side: Side) -> None:
    with pytest.raises(NotPermitted):
        finalize(accepted(), actor=actor, side=side, now=later(2))


def test_revops_admin_may_finalize_for_either_side() -> None:
    result = finalize(accepted(), actor=OPS, side=Side.SALES, now=later(2))
    assert result.entry.approver(Side.SALES) == "ria.revops"


@pytest.mark.parametrize(
    ("actor", "step"),
    [
        (SAM, lambda a: propose(PROPOSAL, actor=a, now=NOW)),
        (AVA, lambda a: propose(PROPOSAL, actor=a, now=NOW)),
        (MIA, lambda a: accept(proposed(), actor=a, now=NOW, reason="ok")),
        (MIA, lambda a: reject(proposed(), actor=a, now=NOW, reason="no")),
        (MIA, lambda a: change_tier(proposed(), actor=a, now=NOW, tier=Tier.T1, reason="x")),
        (AVA, lambda a: accept(proposed(), actor=a, now=NOW, reason="ok")),
        (AVA, lambda a: remove(finalized(), actor=a, now=NOW, reason="x")),
    ],
)
def test_roles_outside_the_policy_are_refused(
    actor: Principal, step: Callable[[Principal], object]
) -> None:
    with pytest.raises(NotPermitted, match=f"role {actor.role.value} may not"):
        step(actor)


@pytest.mark.parametrize("reason", ["", "   "])
def test_validation_and_removal_always_need_a_reason(reason: str) -> None:
    with pytest.raises(InvalidInput, match="reason is required"):
        accept(proposed(), actor=SAM, now=NOW, reason=reason)
    with pytest.raises(InvalidInput, match="reason is required"):
        reject(proposed(), actor=SAM, now=NOW, reason=reason)
    with pytest.raises(InvalidInput, match="reason is required"):
        remove(finalized(), actor=SAM, now=NOW, reason=reason)


def test_proposal_needs_a_sane_fit_score_and_the_same_account() -> None:
    with pytest.raises(InvalidInput, match="fit score"):
        propose(
            Proposal(account_key="acme.com", suggested_tier=Tier.T1, reason="r", fit_score=120),
            actor=MIA,
            now=NOW,
        )
    other = Proposal(account_key="globex.com", suggested_tier=Tier.T1, reason="r")
    with pytest.raises(InvalidInput, match="different account"):
        propose(other, actor=MIA, now=NOW, current=rejected())


def test_entries_are_immutable_values() -> None:
    entry = proposed()
    accept(entry, actor=SAM, now=later(1), reason="ok")
    assert entry.status is TalStatus.PROPOSED and len(entry.history) == 1
