"""Who may do what with a handoff: one pure function, the same for Slack, email and the API.

The router owns assignments, so its answer is the authoritative one (it runs `authorize` on its
own state and publishes the outcome). Channels run the same function first with what they know,
to refuse at once and to show only the buttons or links a person may use.

Who counts:
- the assignee (the person who owns the handoff now);
- the cover: the assignee's `cover_id` in the directory (who alerts sends to in their quiet hours,
  and who the router hands to while they are away);
- a manager of the handoff: the managers above the assignee and the account's owners, and the
  rule set's escalation manager (who is asked about handoffs nobody owns).

What a taken action does to the follow-up clock (`clock_effect`, followed by the SLA monitor):
acknowledging or accepting pauses escalation (the clock runs on); a new owner restarts it (the
action's routing decision starts the new owner's clock); a handoff left with nobody owning it
(a reject or hand-on the router could not place: a conflict, nobody available) stops it. An
unowned handoff runs no clock, so nobody's SLA breaches and no manager gets an escalation for
it; managers hear of it as an ownership question (the conflict alert, with Assign), and the
clock starts for whoever is assigned. A conflict at routing never starts one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from tandem_shared.directory import Directory, Role
from tandem_shared.events import HandoffAction, HandoffActionOutcome, HandOnTo

A = HandoffAction

# Which relation to the handoff lets a person take each action.
ASSIGNEE, COVER, MANAGER = "assignee", "cover", "manager"
ALLOWED: dict[HandoffAction, frozenset[str]] = {
    A.ACKNOWLEDGE: frozenset({ASSIGNEE, COVER, MANAGER}),
    A.ACCEPT: frozenset({ASSIGNEE, COVER}),  # a cover accepting takes the handoff over
    A.REJECT: frozenset({ASSIGNEE}),
    A.HAND_ON: frozenset({ASSIGNEE, COVER, MANAGER}),
    A.ASSIGN: frozenset({MANAGER}),
    A.REASSIGN: frozenset({MANAGER}),
}


@dataclass(frozen=True)
class HandoffFacts:
    """What the policy needs to know about one handoff."""

    handoff_id: str
    assignee_id: str | None  # None: blocked or conflicted, nobody owns it
    owner_ids: tuple[str, ...] = ()  # the account's owners (AE, SDR): their managers count
    escalation_manager_id: str | None = None
    acknowledged_by: str | None = None
    accepted_by: str | None = None
    closed: bool = False
    known: bool = True  # False: the deciding service has no record of it


@dataclass(frozen=True)
class Verdict:
    """Allowed, or refused with a code and a sentence for the person who asked."""

    allowed: bool
    code: str = "done"
    message: str = ""
    relations: frozenset[str] = field(default_factory=frozenset)


def relations(person_id: str, facts: HandoffFacts, directory: Directory) -> frozenset[str]:
    """Return how a person stands to a handoff: assignee, cover, manager (any of them)."""
    found: set[str] = set()
    assignee = directory.get(facts.assignee_id) if facts.assignee_id else None
    if facts.assignee_id == person_id:
        found.add(ASSIGNEE)
    if assignee is not None and assignee.cover_id == person_id:
        found.add(COVER)
    if person_id in managers(facts, directory):
        found.add(MANAGER)
    return frozenset(found)


def managers(facts: HandoffFacts, directory: Directory) -> list[str]:
    """Return the people who manage this handoff (assignee's and owners' managers, escalation)."""
    people = [p for p in (facts.assignee_id, *facts.owner_ids) if p]
    found: list[str] = []
    for person_id in people:
        for manager in directory.manager_chain(person_id):
            if manager.id not in found:
                found.append(manager.id)
    if facts.escalation_manager_id and facts.escalation_manager_id not in found:
        found.append(facts.escalation_manager_id)
    return found


def authorize(
    *,
    action: HandoffAction,
    actor_id: str,
    facts: HandoffFacts,
    directory: Directory,
    hand_on_to: HandOnTo | None = None,
    target_id: str | None = None,
) -> Verdict:
    """Decide whether `actor_id` may take `action` on the handoff now, and say why not."""
    actor = directory.get(actor_id)
    if actor is None or not actor.active:
        return _no("unknown_person", f"{actor_id} is not someone Tandem knows.")
    if not facts.known:
        return _no("unknown_handoff", f"Tandem has no record of handoff {facts.handoff_id}.")
    if facts.closed:
        return _no("closed", "This handoff is closed: sales already followed it up.")
    mine = relations(actor_id, facts, directory)
    if not mine & ALLOWED[action]:
        return _not_permitted(action, facts, directory)
    state = _state_refusal(action, actor_id, facts, directory)
    if state is not None:
        return state
    target = _target_refusal(action, actor_id, facts, directory, hand_on_to, target_id)
    if target is not None:
        return target
    return Verdict(True, relations=mine)


def precheck(
    *,
    action: HandoffAction,
    actor_id: str,
    facts: HandoffFacts,
    directory: Directory,
    hand_on_to: HandOnTo | None = None,
    target_id: str | None = None,
) -> Verdict:
    """A channel's first check, with what it knows: refuse at once what the router would refuse.

    A channel may not know the account's owners or the rule set's escalation manager, so a
    manager it cannot place is let through: the router, which knows, answers for good.
    """

    def judge(known: HandoffFacts) -> Verdict:
        return authorize(
            action=action,
            actor_id=actor_id,
            facts=known,
            directory=directory,
            hand_on_to=hand_on_to,
            target_id=target_id,
        )

    verdict = judge(facts)
    actor = directory.get(actor_id)
    unplaced_manager = (
        verdict.code == "not_permitted"
        and actor is not None
        and actor.role in (Role.MANAGER, Role.LEADER)
        and MANAGER in ALLOWED[action]
    )
    if not unplaced_manager:
        return verdict
    # Judge them as the manager they may be: the handoff's state still has its say.
    return judge(replace(facts, escalation_manager_id=actor_id))


# Every control a channel may offer: the hand-on targets count as one control each.
CHOICES: tuple[tuple[HandoffAction, HandOnTo | None], ...] = (
    (A.ACKNOWLEDGE, None),
    (A.ACCEPT, None),
    (A.REJECT, None),
    (A.HAND_ON, HandOnTo.COVER),
    (A.HAND_ON, HandOnTo.POOL),
    (A.HAND_ON, HandOnTo.PERSON),
    (A.ASSIGN, None),
    (A.REASSIGN, None),
)


def available_actions(
    person_id: str, facts: HandoffFacts, directory: Directory, *, first_check: bool = False
) -> tuple[tuple[HandoffAction, HandOnTo | None], ...]:
    """Return what a person may do now (what their message or page offers).

    `first_check`: judge as a channel does (precheck), not as the router (authorize).
    """
    check = precheck if first_check else authorize
    offered = []
    for action, to in CHOICES:
        # Naming someone needs a target; any other active teammate stands in for the check.
        named = action in (A.ASSIGN, A.REASSIGN) or to is HandOnTo.PERSON
        verdict = check(
            action=action,
            actor_id=person_id,
            facts=facts,
            directory=directory,
            hand_on_to=to,
            target_id=_any_target(person_id, facts, directory) if named else None,
        )
        if verdict.allowed:
            offered.append((action, to))
    return tuple(offered)


def _state_refusal(
    action: HandoffAction, actor_id: str, facts: HandoffFacts, directory: Directory
) -> Verdict | None:
    """Refuse what the handoff's state makes pointless (a double click, two people at once)."""
    if action is A.ASSIGN and facts.assignee_id is not None:
        owner = _name(facts.assignee_id, directory)
        return _no("already_done", f"{owner} already owns this handoff; reassign it instead.")
    if action is not A.ASSIGN and facts.assignee_id is None:
        return _no("unassigned", "Nobody owns this handoff yet: a manager has to assign it.")
    if action is A.ACCEPT and facts.accepted_by:
        who = _name(facts.accepted_by, directory)
        return _no("already_done", f"{who} already accepted this handoff.")
    if action is A.ACKNOWLEDGE and (facts.acknowledged_by or facts.accepted_by):
        who = _name(facts.acknowledged_by or facts.accepted_by or "", directory)
        verb = "acknowledged" if facts.acknowledged_by else "accepted"
        return _no("already_done", f"{who} already {verb} this handoff.")
    return None


def _target_refusal(
    action: HandoffAction,
    actor_id: str,
    facts: HandoffFacts,
    directory: Directory,
    hand_on_to: HandOnTo | None,
    target_id: str | None,
) -> Verdict | None:
    """Check who a handoff would go to: someone known, active, and not its owner already."""
    if action is A.HAND_ON:
        if hand_on_to is None:
            return _no("invalid", "Say who to hand it on to: the cover, a teammate or the pool.")
        if hand_on_to is HandOnTo.POOL:
            return None
        if hand_on_to is HandOnTo.COVER:
            assignee = directory.get(facts.assignee_id or "")
            target_id = assignee.cover_id if assignee is not None else None
            if target_id is None:
                return _no("no_cover", "The assignee has no cover to hand it on to.")
    elif action not in (A.ASSIGN, A.REASSIGN):
        return None
    if not target_id:
        return _no("invalid", "Say who should take the handoff.")
    target = directory.get(target_id)
    if target is None or not target.active:
        return _no("unknown_person", f"{target_id} is not someone Tandem can assign.")
    if target.team != "sales":
        return _no("invalid", f"{target.name} is not on the sales team.")
    if target_id == facts.assignee_id:
        return _no("already_done", f"{target.name} already owns this handoff.")
    return None


def _not_permitted(action: HandoffAction, facts: HandoffFacts, directory: Directory) -> Verdict:
    who = {
        ASSIGNEE: "its assignee",
        COVER: "the assignee's cover",
        MANAGER: "a manager of the account",
    }
    allowed = " or ".join(who[r] for r in (ASSIGNEE, COVER, MANAGER) if r in ALLOWED[action])
    owner = f" (it is {_name(facts.assignee_id, directory)}'s)" if facts.assignee_id else ""
    verb = action.value.replace("_", " ")
    return _no("not_permitted", f"Only {allowed} may {verb} this handoff{owner}.")


def teammates(person_id: str, facts: HandoffFacts, directory: Directory) -> list[str]:
    """Return the reps a person could hand the handoff on to (not its owner, not themselves)."""
    return [
        p.id
        for p in directory.people
        if p.active and p.team == "sales" and p.role in (Role.AE, Role.SDR)
        if p.id not in (facts.assignee_id, person_id)
    ]


def _any_target(person_id: str, facts: HandoffFacts, directory: Directory) -> str | None:
    return next(iter(teammates(person_id, facts, directory)), None)


def _name(person_id: str | None, directory: Directory) -> str:
    person = directory.get(person_id) if person_id else None
    return person.name if person is not None else (person_id or "someone")


def _no(code: str, message: str) -> Verdict:
    return Verdict(False, code, message)


class ClockEffect(StrEnum):
    """What a taken action does to the handoff's follow-up clock."""

    NONE = "none"
    PAUSE = "pause"  # escalation pauses; the clock runs on (acknowledge, accept)
    RESTART = "restart"  # a new owner: their routing decision starts their clock
    STOP = "stop"  # nobody owns it now: no clock runs until someone is assigned


def clock_effect(outcome: HandoffActionOutcome) -> ClockEffect:
    """Return what a router's answer does to the handoff's clock (refusals do nothing)."""
    if not outcome.taken:
        return ClockEffect.NONE
    if outcome.decision_id is not None:
        return ClockEffect.RESTART
    if outcome.assignee_id is None:
        return ClockEffect.STOP
    if outcome.action in (A.ACKNOWLEDGE, A.ACCEPT):
        return ClockEffect.PAUSE
    return ClockEffect.NONE
