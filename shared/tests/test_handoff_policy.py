"""The one policy every channel and the router share: who may do what with a handoff."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tandem_shared.directory import load_directory
from tandem_shared.events import HandoffAction as A
from tandem_shared.events import HandoffActionOutcome, HandOnTo
from tandem_shared.handoff_policy import (
    ClockEffect,
    HandoffFacts,
    authorize,
    available_actions,
    clock_effect,
    precheck,
)

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = load_directory(ROOT / "config/example/people.yaml")
# Ava (AE) owns it; Ben is her cover; Sam manages the AEs; Lea manages Sam.
FACTS = HandoffFacts(handoff_id="h1", assignee_id="ava.ae", owner_ids=("ava.ae", "dan.sdr"))


def check(action: A, actor: str, facts: HandoffFacts = FACTS, **kw: object) -> tuple[bool, str]:
    verdict = authorize(action=action, actor_id=actor, facts=facts, directory=DIRECTORY, **kw)  # type: ignore[arg-type]
    return verdict.allowed, verdict.code


@pytest.mark.parametrize(
    ("action", "actor", "allowed"),
    [
        (A.ACKNOWLEDGE, "ava.ae", True),
        (A.ACKNOWLEDGE, "ben.ae", True),  # the cover
        (A.ACKNOWLEDGE, "sam.manager", True),
        (A.ACKNOWLEDGE, "chloe.ae", False),  # another rep
        (A.ACKNOWLEDGE, "mia.marketing", False),
        (A.ACCEPT, "ava.ae", True),
        (A.ACCEPT, "ben.ae", True),
        (A.ACCEPT, "sam.manager", False),
        (A.REJECT, "ava.ae", True),
        (A.REJECT, "ben.ae", False),
        (A.REASSIGN, "ava.ae", False),
        (A.REASSIGN, "lea.leader", True),  # Sam's manager is a manager of the account too
    ],
)
def test_who_may_do_what(action: A, actor: str, allowed: bool) -> None:
    kw = {"target_id": "chloe.ae"} if action is A.REASSIGN else {}
    assert check(action, actor, **kw)[0] is allowed


def test_a_refusal_says_who_may_and_whose_it_is() -> None:
    verdict = authorize(action=A.ACCEPT, actor_id="chloe.ae", facts=FACTS, directory=DIRECTORY)
    assert (verdict.allowed, verdict.code) == (False, "not_permitted")
    assert verdict.message == (
        "Only its assignee or the assignee's cover may accept this handoff (it is Ava Thompson's)."
    )


def test_what_is_already_done_is_refused_politely() -> None:
    accepted = HandoffFacts(handoff_id="h1", assignee_id="ava.ae", accepted_by="ava.ae")
    verdict = authorize(action=A.ACCEPT, actor_id="ava.ae", facts=accepted, directory=DIRECTORY)
    assert (verdict.code, verdict.message) == (
        "already_done",
        "Ava Thompson already accepted this handoff.",
    )
    assert check(A.ACKNOWLEDGE, "ben.ae", accepted) == (False, "already_done")
    assert check(A.REJECT, "ava.ae", accepted) == (True, "done")  # still hers to let go


def test_unassigned_handoffs_are_assigned_by_a_manager_only() -> None:
    blocked = HandoffFacts(handoff_id="h1", assignee_id=None, escalation_manager_id="sam.manager")
    assert check(A.ASSIGN, "sam.manager", blocked, target_id="ben.ae") == (True, "done")
    assert check(A.ACCEPT, "ava.ae", blocked) == (False, "not_permitted")
    assert check(A.ASSIGN, "sam.manager", FACTS, target_id="ben.ae") == (False, "already_done")
    assert check(A.ASSIGN, "sam.manager", blocked, target_id="mia.marketing")[1] == "invalid"


def test_hand_on_needs_a_cover_or_a_target() -> None:
    assert check(A.HAND_ON, "ava.ae", hand_on_to=HandOnTo.COVER) == (True, "done")
    bens = HandoffFacts(handoff_id="h1", assignee_id="ben.ae")
    assert check(A.HAND_ON, "ben.ae", bens, hand_on_to=HandOnTo.COVER) == (False, "no_cover")
    assert check(A.HAND_ON, "ava.ae", hand_on_to=HandOnTo.PERSON) == (False, "invalid")
    assert check(A.HAND_ON, "ava.ae", hand_on_to=HandOnTo.POOL) == (True, "done")


def test_closed_unknown_and_strangers() -> None:
    assert check(A.ACCEPT, "ava.ae", HandoffFacts("h1", "ava.ae", closed=True))[1] == "closed"
    assert check(A.ACCEPT, "ava.ae", HandoffFacts("h1", None, known=False))[1] == "unknown_handoff"
    assert check(A.ACCEPT, "nobody")[1] == "unknown_person"


def test_buttons_offered_match_the_policy() -> None:
    def actions(person: str) -> list[str]:
        return [
            f"{a.value}:{t.value if t else ''}"
            for a, t in available_actions(person, FACTS, DIRECTORY)
        ]

    hand_on = ["hand_on:cover", "hand_on:pool", "hand_on:person"]
    assert actions("ava.ae") == ["acknowledge:", "accept:", "reject:", *hand_on]
    assert actions("ben.ae") == ["acknowledge:", "accept:", *hand_on]
    assert actions("sam.manager") == ["acknowledge:", *hand_on, "reassign:"]
    assert actions("mia.marketing") == []


def test_a_channel_lets_a_manager_it_cannot_place_through_to_the_router() -> None:
    unknown_owners = HandoffFacts(handoff_id="h1", assignee_id="mia.marketing")
    verdict = precheck(
        action=A.REASSIGN,
        actor_id="sam.manager",
        facts=unknown_owners,
        directory=DIRECTORY,
        target_id="ben.ae",
    )
    assert verdict.allowed
    assert not precheck(
        action=A.REASSIGN, actor_id="chloe.ae", facts=FACTS, directory=DIRECTORY, target_id="ben.ae"
    ).allowed


@pytest.mark.parametrize(
    ("action", "taken", "assignee", "decision", "effect"),
    [
        (A.ACKNOWLEDGE, True, "ava.ae", None, ClockEffect.PAUSE),
        (A.ACCEPT, True, "ava.ae", None, ClockEffect.PAUSE),
        (A.ACCEPT, True, "ben.ae", "d-2", ClockEffect.RESTART),  # the cover took it over
        (A.REASSIGN, True, "chloe.ae", "d-2", ClockEffect.RESTART),
        (A.REJECT, True, None, None, ClockEffect.STOP),  # nobody could take it
        (A.HAND_ON, True, None, None, ClockEffect.STOP),
        (A.ACCEPT, False, "ava.ae", None, ClockEffect.NONE),  # refused: nothing changes
    ],
)
def test_what_an_action_does_to_the_clock(
    action: A, taken: bool, assignee: str | None, decision: str | None, effect: ClockEffect
) -> None:
    outcome = HandoffActionOutcome(
        action_id="a-1",
        handoff_id="h-1",
        action=action,
        actor_id="ava.ae",
        via="api",
        taken=taken,
        code="done" if taken else "not_permitted",
        message="",
        previous_assignee_id="ava.ae",
        assignee_id=assignee,
        decision_id=decision,
        occurred_at=datetime(2026, 3, 2, 15, tzinfo=UTC),
    )
    assert clock_effect(outcome) is effect
