"""The ABM lead flow: event + state -> routing decision, alert requests and the next states.

Everything is a function of the arguments, and every id derives from the triggering event's id,
so a redelivered or replayed event yields the same output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from tandem_router.domain import messages
from tandem_router.domain.apply import RouterEvent, apply_event, record_handoff
from tandem_router.domain.context import build_context
from tandem_router.domain.matching import AccountMatch
from tandem_router.domain.model import AccountState, HandoffRecord, RoundRobinState
from tandem_router.domain.ownership import Ownership, OwnershipConflict, resolve_ownership
from tandem_router.domain.routing import Roster, Route, route_handoff
from tandem_router.domain.rules import RuleSet
from tandem_router.domain.signals import DetectedSignal, SignalScan, scan
from tandem_shared.directory import Directory
from tandem_shared.events import (
    AccountUpserted,
    AlertRequested,
    ContactUpserted,
    EngagementRecorded,
    HandoffContext,
    HandoffReassignRequested,
    RoutingConflict,
    RoutingDecided,
    TalFinalized,
    TalRemoved,
    Tier,
)


@dataclass(frozen=True)
class Decision:
    """What the shell saves (states) and publishes (routing, conflicts, alerts) for one event."""

    state: AccountState | None
    round_robin: RoundRobinState
    routing: RoutingDecided | None = None
    conflicts: tuple[RoutingConflict, ...] = ()
    alerts: tuple[AlertRequested, ...] = ()
    signals: SignalScan = field(default_factory=SignalScan)


@dataclass(frozen=True)
class _Handoff:
    """One handoff being decided: the inputs every step of the flow shares."""

    event_id: str
    event: RouterEvent
    match: AccountMatch
    state: AccountState | None
    signal: DetectedSignal
    handoff_id: str
    rules: RuleSet
    roster: Roster
    exclude: tuple[str, ...] = ()
    preamble: tuple[str, ...] = ()


def decide(
    *,
    event_id: str,
    event: RouterEvent,
    match: AccountMatch,
    state: AccountState | None,
    directory: Directory,
    round_robin: RoundRobinState,
    open_handoffs: Mapping[str, int],
    rules: RuleSet,
    now: datetime,
) -> Decision:
    """Decide what one event means for its account: update it, and hand off on a signal."""
    before = state
    if before is None and match.account_key is not None:
        before = AccountState(account_key=match.account_key)
    roster = Roster(directory, round_robin, open_handoffs, now)
    if isinstance(event, HandoffReassignRequested):
        return _reassign(event_id, event, match, before, rules, roster)
    found = scan(event, state=before, rules=rules.signals, now=now)
    after = (
        apply_event(before, event, now=now, retention=rules.retention)
        if before is not None
        else None
    )
    if not found.fired:
        conflicts = _new_conflicts(event, before, after, rules, roster)
        alerts = _conflict_alerts(event_id, after, conflicts, directory, rules, now)
        return Decision(after, round_robin, None, tuple(c for c, _ in conflicts), alerts, found)
    handoff = _Handoff(
        event_id=event_id,
        event=event,
        match=match,
        state=after,
        signal=found.fired[0],
        handoff_id=messages.stable_id(event_id, "handoff"),
        rules=rules,
        roster=roster,
        preamble=tuple(
            [f"also fired: {d.signal.value} ({d.explanation})" for d in found.fired[1:]]
            + [f"in cool-down: {d.signal.value} ({d.explanation})" for d in found.suppressed]
        ),
    )
    decision = replace(_hand_off(handoff, notify_marketing=True), signals=found)
    if decision.state is None:
        return decision
    # Every fired signal starts its cool-down: this handoff answers all of them.
    alerted = {**decision.state.last_alerts, **{d.signal: now for d in found.fired}}
    return replace(decision, state=decision.state.model_copy(update={"last_alerts": alerted}))


def may_hand_off(
    *, event: RouterEvent, state: AccountState | None, rules: RuleSet, now: datetime
) -> bool:
    """Return True when deciding this event may assign someone (so it needs the live roster)."""
    if isinstance(event, HandoffReassignRequested):
        return True
    return bool(scan(event, state=state, rules=rules.signals, now=now).fired)


def _reassign(
    event_id: str,
    event: HandoffReassignRequested,
    match: AccountMatch,
    state: AccountState | None,
    rules: RuleSet,
    roster: Roster,
) -> Decision:
    """Route a handoff again, to anyone but the previous assignee."""
    record = state.handoff(event.handoff_id) if state is not None else None
    if record is None:
        reason = f"cannot reassign handoff {event.handoff_id}: the router has no record of it"
        conflict = RoutingConflict(
            account_key=event.account_key,
            handoff_id=event.handoff_id,
            candidates={"previous": event.previous_assignee_id},
            reason=reason,
            rule_set_version=rules.version,
            occurred_at=roster.now,
        )
        pairs = [(conflict, messages.stable_id(event_id, "conflict"))]
        alerts = _conflict_alerts(event_id, state, pairs, roster.directory, rules, roster.now)
        return Decision(state, roster.round_robin, None, (conflict,), alerts)
    handoff = _Handoff(
        event_id=event_id,
        event=event,
        match=match,
        state=state,
        signal=DetectedSignal(record.signal, f"reassignment of a {record.signal.value} handoff"),
        handoff_id=record.handoff_id,
        rules=rules,
        roster=roster,
        exclude=(event.previous_assignee_id,),
        preamble=(f"reassigned from {event.previous_assignee_id}: {event.reason}",),
    )
    return _hand_off(handoff, notify_marketing=False)


def _hand_off(h: _Handoff, *, notify_marketing: bool) -> Decision:
    state, rules, roster = h.state, h.rules, h.roster
    tier = state.tier if state is not None else Tier.T3
    lead_owner = h.event.owner_id if isinstance(h.event, ContactUpserted) else None
    ownership = resolve_ownership(
        state=state, lead_owner_id=lead_owner, directory=roster.directory, rules=rules.ownership
    )
    route = route_handoff(
        tier=tier,
        territory=state.territory if state is not None else None,
        ownership=ownership,
        rules=rules,
        roster=roster,
        exclude=h.exclude,
    )
    context = build_context(
        state, signal=h.signal.signal, signal_explanation=h.signal.explanation, now=roster.now
    )
    basics = messages.AlertBasics(
        event_id=h.event_id,
        account_key=state.account_key if state is not None else None,
        account_name=state.name if state is not None else None,
        tier=tier,
        signal=h.signal.signal,
        handoff_id=h.handoff_id,
        summary=h.signal.explanation,
        context=context,
        now=roster.now,
        crm_url=record_url(h.event, state),
    )
    explanation = _explain(h, ownership, route)
    conflicts = _conflict_events(h, ownership, route)
    alerts: list[AlertRequested] = []
    routing = None
    if route.assignee is not None:
        routing = _routing_decided(h, basics, route, ownership, explanation)
        urgency = rules.urgency_for(tier, h.signal.signal)
        alerts.append(
            messages.handoff_alert(
                basics, route.assignee, urgency=urgency, reason="; ".join(route.explanation)
            )
        )
        if route.fyi:
            alerts.append(messages.fyi_alert(basics, route.assignee, list(route.fyi)))
    if notify_marketing:
        alerts.append(
            messages.marketing_alert(
                basics,
                marketer=ownership.marketer,
                channel=rules.marketing_channel,
                assignee=route.assignee,
            )
        )
    for conflict, suffix in conflicts:
        managers = messages.managers_of(
            sorted(conflict.candidates.values()), roster.directory, rules.escalation_manager_id
        )
        alerts.append(messages.conflict_alert(basics, conflict, managers=managers, suffix=suffix))
    new_state = state
    if state is not None:
        record = HandoffRecord(
            handoff_id=h.handoff_id,
            signal=h.signal.signal,
            tier=tier,
            assignee_id=route.assignee.id if route.assignee else None,
            decided_at=roster.now,
        )
        new_state = record_handoff(state, record, retention=rules.retention)
    return Decision(
        new_state, route.round_robin, routing, tuple(c for c, _ in conflicts), tuple(alerts)
    )


def _routing_decided(
    h: _Handoff,
    basics: messages.AlertBasics,
    route: Route,
    ownership: Ownership,
    explanation: list[str],
) -> RoutingDecided:
    assert route.assignee is not None
    notified = [p.id for p in route.fyi]
    if ownership.marketer is not None:
        notified.append(ownership.marketer.id)
    return RoutingDecided(
        decision_id=messages.stable_id(h.event_id, "decision"),
        handoff_id=h.handoff_id,
        account_key=basics.account_key,
        account_name=basics.account_name,
        tier=basics.tier,
        in_tal=h.state.in_tal if h.state is not None else False,
        signal=h.signal.signal,
        assignee_id=route.assignee.id,
        assignee_role=route.assignee.role.value,
        notified_ids=notified,
        account_team_ids=[p.id for p in (ownership.ae, ownership.sdr, ownership.marketer) if p],
        contact_email=_contact_email(h.event),
        crm_url=basics.crm_url,
        match=h.match.info,
        rule_set_version=h.rules.version,
        explanation=explanation,
        context=basics.context,
        decided_at=h.roster.now,
    )


def record_url(event: RouterEvent | None, state: AccountState | None) -> str | None:
    """Return the CRM page of what a handoff is about: the lead or contact, else the account."""
    if isinstance(event, ContactUpserted) and event.crm_url:
        return event.crm_url
    if state is None or not state.crm_urls:
        return None
    # Prefer the account's record in the CRM the event came from.
    crm = getattr(event, "crm", None)
    preferred = state.crm_urls.get(crm.value) if crm is not None else None
    return preferred or next(iter(state.crm_urls.values()))


def _explain(h: _Handoff, ownership: Ownership, route: Route) -> list[str]:
    match = h.match
    return [
        f"rule set {h.rules.version}",
        f"match: {match.info.method} (score {match.info.score:.2f}): {match.note}",
        f"signal: {h.signal.signal.value}: {h.signal.explanation}",
        *h.preamble,
        *ownership.explanation,
        f"rule: {route.rule}",
        *route.explanation,
    ]


def _conflict_events(
    h: _Handoff, ownership: Ownership, route: Route
) -> list[tuple[RoutingConflict, str]]:
    """Return the conflicts to escalate: ownership disputes, and a handoff nobody can take."""
    key = h.state.account_key if h.state is not None else None
    found = [
        (_conflict_event(c, key, h.handoff_id, h.rules, h.roster.now), f"conflict-{c.role}")
        for c in ownership.conflicts
    ]
    if route.assignee is None and not route.blocked_by_conflict:
        reason = f"no one can take the handoff: {route.failure}"
        unassigned = RoutingConflict(
            account_key=key,
            handoff_id=h.handoff_id,
            reason=reason,
            rule_set_version=h.rules.version,
            occurred_at=h.roster.now,
        )
        found.append((unassigned, "unassigned"))
    return found


def _conflict_event(
    conflict: OwnershipConflict,
    key: str | None,
    handoff_id: str | None,
    rules: RuleSet,
    now: datetime,
) -> RoutingConflict:
    return RoutingConflict(
        account_key=key,
        handoff_id=handoff_id,
        candidates=dict(conflict.candidates),
        reason=conflict.reason,
        rule_set_version=rules.version,
        occurred_at=now,
    )


def _new_conflicts(
    event: RouterEvent,
    before: AccountState | None,
    after: AccountState | None,
    rules: RuleSet,
    roster: Roster,
) -> list[tuple[RoutingConflict, str]]:
    """Return ownership conflicts an account or TAL change has just created (raised at once)."""
    if after is None or not isinstance(event, AccountUpserted | TalFinalized | TalRemoved):
        return []

    def conflicts_of(state: AccountState | None) -> list[OwnershipConflict]:
        return list(
            resolve_ownership(
                state=state, lead_owner_id=None, directory=roster.directory, rules=rules.ownership
            ).conflicts
        )

    old = conflicts_of(before)
    return [
        (_conflict_event(c, after.account_key, None, rules, roster.now), f"conflict-{c.role}")
        for c in conflicts_of(after)
        if c not in old
    ]


def _conflict_alerts(
    event_id: str,
    state: AccountState | None,
    conflicts: list[tuple[RoutingConflict, str]],
    directory: Directory,
    rules: RuleSet,
    now: datetime,
) -> tuple[AlertRequested, ...]:
    """Return the manager alerts of conflicts raised outside a handoff."""
    alerts = []
    for conflict, suffix in conflicts:
        basics = messages.AlertBasics(
            event_id=event_id,
            account_key=conflict.account_key,
            account_name=state.name if state is not None else None,
            tier=state.tier if state is not None else Tier.T3,
            signal=None,
            handoff_id=conflict.handoff_id,
            summary=conflict.reason,
            context=HandoffContext(),
            now=now,
            crm_url=record_url(None, state),
        )
        managers = messages.managers_of(
            sorted(conflict.candidates.values()), directory, rules.escalation_manager_id
        )
        alerts.append(messages.conflict_alert(basics, conflict, managers=managers, suffix=suffix))
    return tuple(alerts)


def _contact_email(event: RouterEvent) -> str | None:
    if isinstance(event, ContactUpserted):
        return event.email
    if isinstance(event, EngagementRecorded):
        return event.contact_email
    return None
