"""The router's answer to actions on a handoff: the shared policy on its own state, and effects."""

from __future__ import annotations

from tandem_router.domain.actions import decide_action
from tandem_router.domain.apply import record_handoff
from tandem_router.domain.messages import stable_id
from tandem_router.domain.model import HandoffRecord, RoundRobinState
from tandem_shared.directory import Role
from tandem_shared.events import (
    AlertKind,
    HandoffAction,
    HandoffActionRequested,
    HandOnTo,
    RejectReason,
    Signal,
    Tier,
)


def covered_directory(make):
    ava = make.person(
        "ava.ae", Role.AE, cover_id="ben.ae", territories=("na-east",), timezone="America/New_York"
    )
    return make.directory(ava)


def acme_with_handoff(make, assignee="ava.ae", **record):
    rules = make.rules()
    handoff = HandoffRecord(
        handoff_id="h-1",
        signal=Signal.MEETING_REQUEST,
        tier=Tier.T1,
        assignee_id=assignee,
        decided_at=make.now,
        **record,
    )
    return record_handoff(make.acme(), handoff, retention=rules.retention)


def act(make, state, action, actor, *, directory=None, closed=False, **fields):
    request = HandoffActionRequested(
        action_id="a-1",
        handoff_id="h-1",
        action=action,
        actor_id=actor,
        via="slack",
        requested_at=make.now,
        **fields,
    )
    return decide_action(
        event_id="evt-action",
        request=request,
        state=state,
        closed=closed,
        directory=directory or covered_directory(make),
        round_robin=RoundRobinState(),
        open_handoffs={},
        rules=make.rules(),
        now=make.now,
    )


def test_accept_by_the_assignee_is_recorded_without_a_new_owner(make):
    result = act(make, acme_with_handoff(make), HandoffAction.ACCEPT, "ava.ae")
    assert result.outcome.taken and result.outcome.code == "done"
    assert result.outcome.assignee_id == "ava.ae" and result.outcome.decision_id is None
    assert result.decision.routing is None and result.decision.alerts == ()
    assert result.decision.state.handoff("h-1").accepted_by == "ava.ae"
    again = act(make, result.decision.state, HandoffAction.ACCEPT, "ava.ae")
    assert (again.outcome.taken, again.outcome.code) == (False, "already_done")
    assert again.decision is None


def test_someone_else_is_refused_and_nothing_changes(make):
    result = act(make, acme_with_handoff(make), HandoffAction.ACCEPT, "chloe.ae")
    assert (result.outcome.taken, result.outcome.code) == (False, "not_permitted")
    assert result.decision is None
    assert "(it is Ava's)" in result.outcome.message


def test_reject_routes_again_without_the_rejecter(make):
    result = act(
        make,
        acme_with_handoff(make),
        HandoffAction.REJECT,
        "ava.ae",
        reason=RejectReason.WRONG_PERSON,
        note="Dan knows them",
    )
    routing = result.decision.routing
    assert routing is not None and routing.assignee_id != "ava.ae"
    assert routing.decision_id == result.outcome.decision_id
    assert result.outcome.previous_assignee_id == "ava.ae"
    assert result.outcome.assignee_id == routing.assignee_id
    trail = "\n".join(routing.explanation)
    assert "rejected (wrong person): Dan knows them by ava.ae via slack" in trail
    [alert] = [a for a in result.decision.alerts if a.kind is AlertKind.HANDOFF]
    assert alert.recipient_ids == [routing.assignee_id]


def test_hand_on_to_the_cover_and_manager_reassign_name_the_new_owner(make):
    result = act(
        make, acme_with_handoff(make), HandoffAction.HAND_ON, "ava.ae", hand_on_to=HandOnTo.COVER
    )
    assert result.decision.routing.assignee_id == "ben.ae"
    assert result.decision.state.handoff("h-1").assignee_id == "ben.ae"
    moved = act(
        make,
        result.decision.state,
        HandoffAction.REASSIGN,
        "sam.manager",
        target_id="chloe.ae",
    )
    assert moved.outcome.taken and moved.decision.routing.assignee_id == "chloe.ae"
    assert [a.recipient_ids for a in moved.decision.alerts] == [["chloe.ae"]]


def test_a_manager_assigns_a_blocked_handoff(make):
    blocked = acme_with_handoff(make, assignee=None)
    refused = act(make, blocked, HandoffAction.ACCEPT, "ava.ae")
    assert refused.outcome.code == "not_permitted"
    result = act(make, blocked, HandoffAction.ASSIGN, "sam.manager", target_id="dan.sdr")
    assert result.outcome.taken and result.decision.routing.assignee_id == "dan.sdr"
    # Ids derive from the request event: a redelivered request decides the same way.
    assert result.decision.routing.decision_id == stable_id("evt-action", "decision")


def test_unknown_and_closed_handoffs_are_refused(make):
    assert act(make, make.acme(), HandoffAction.ACCEPT, "ava.ae").outcome.code == "unknown_handoff"
    closed = act(make, acme_with_handoff(make), HandoffAction.ACCEPT, "ava.ae", closed=True)
    assert closed.outcome.code == "closed"


def test_a_cover_accepting_takes_the_handoff_with_its_clock_paused(make):
    result = act(make, acme_with_handoff(make), HandoffAction.ACCEPT, "ben.ae")
    routing = result.decision.routing
    assert (routing.assignee_id, routing.accepted_by) == ("ben.ae", "ben.ae")
    assert result.decision.state.handoff("h-1").accepted_by == "ben.ae"
    assert result.decision.alerts == ()  # Ben knows: he just accepted it
    assert act(make, result.decision.state, HandoffAction.ACCEPT, "ava.ae").outcome.code == (
        "not_permitted"
    )


def test_the_new_owners_decision_and_alert_link_to_the_account_record(make):
    page = "https://app.hubspot.com/contacts/62515/record/0-2/9"
    state = acme_with_handoff(make).model_copy(update={"crm_urls": {"hubspot": page}})
    result = act(make, state, HandoffAction.HAND_ON, "ava.ae", hand_on_to=HandOnTo.COVER)
    assert result.decision.routing.crm_url == page
    assert [a.crm_url for a in result.decision.alerts] == [page]
