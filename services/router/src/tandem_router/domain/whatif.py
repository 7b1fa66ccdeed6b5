"""What-if: replay past events under the current and a candidate rule set and compare outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tandem_router.domain.apply import RouterEvent
from tandem_router.domain.decide import decide
from tandem_router.domain.matching import AccountIndex, AccountRef, locate_account
from tandem_router.domain.model import AccountState, RoundRobinState
from tandem_router.domain.rules import RuleSet
from tandem_shared.directory import Directory
from tandem_shared.events import Signal, SlaEvent, Tier


@dataclass(frozen=True)
class ReplayEvent:
    """A past event: its id, its payload, and when it was processed (the replay's `now`).

    An SlaEvent (SLA met) closes a handoff, freeing the assignee's capacity as it did live.
    """

    event_id: str
    payload: RouterEvent | SlaEvent
    at: datetime


@dataclass(frozen=True)
class Outcome:
    """What one rule set did with one event (None fields: no handoff)."""

    assignee_id: str | None = None
    tier: Tier | None = None
    signal: Signal | None = None
    conflict: bool = False


@dataclass(frozen=True)
class EventDiff:
    event_id: str
    before: Outcome
    after: Outcome

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class WhatIfSummary:
    events: int = 0
    changed: int = 0
    assignee_changed: int = 0
    tier_changed: int = 0
    signal_changed: int = 0
    conflict_changed: int = 0
    handoffs_before: int = 0
    handoffs_after: int = 0


@dataclass(frozen=True)
class WhatIfReport:
    current_version: str
    candidate_version: str
    diffs: tuple[EventDiff, ...] = ()  # only the events whose outcome changed
    summary: WhatIfSummary = field(default_factory=WhatIfSummary)


@dataclass(frozen=True)
class World:
    """The starting point of a replay: accounts, pools and open handoffs."""

    accounts: Mapping[str, AccountState] = field(default_factory=dict)
    round_robin: RoundRobinState = field(default_factory=RoundRobinState)
    open_handoffs: Mapping[str, int] = field(default_factory=dict)


def simulate(
    events: Sequence[ReplayEvent], *, rules: RuleSet, directory: Directory, world: World
) -> list[Outcome]:
    """Replay events in order under one rule set and return each event's outcome."""
    accounts = dict(world.accounts)
    round_robin = world.round_robin
    open_handoffs = dict(world.open_handoffs)
    holders: dict[str, str] = {}  # handoff id -> assignee, for the handoffs the replay opened
    index = AccountIndex.build(AccountRef.of(s) for s in accounts.values())
    outcomes = []
    for item in events:
        if isinstance(item.payload, SlaEvent):
            _release(open_handoffs, holders.pop(item.payload.handoff_id, None))
            outcomes.append(Outcome())
            continue
        match = locate_account(item.payload, index, fuzzy_threshold=rules.fuzzy_threshold)
        before = accounts.get(match.account_key) if match.account_key else None
        decision = decide(
            event_id=item.event_id,
            event=item.payload,
            match=match,
            state=before,
            directory=directory,
            round_robin=round_robin,
            open_handoffs=open_handoffs,
            rules=rules,
            now=item.at,
        )
        round_robin = decision.round_robin
        if decision.state is not None:
            accounts[decision.state.account_key] = decision.state
            if before is None or AccountRef.of(before) != AccountRef.of(decision.state):
                index = AccountIndex.build(AccountRef.of(s) for s in accounts.values())
        routing = decision.routing
        if routing is not None:
            # A reassignment moves the open handoff from the previous assignee, as live.
            _release(open_handoffs, holders.get(routing.handoff_id))
            holders[routing.handoff_id] = routing.assignee_id
            open_handoffs[routing.assignee_id] = open_handoffs.get(routing.assignee_id, 0) + 1
        outcomes.append(
            Outcome(
                assignee_id=routing.assignee_id if routing else None,
                tier=routing.tier if routing else None,
                signal=routing.signal if routing else None,
                conflict=bool(decision.conflicts),
            )
        )
    return outcomes


def _release(open_handoffs: dict[str, int], assignee: str | None) -> None:
    if assignee is not None and open_handoffs.get(assignee, 0) > 0:
        open_handoffs[assignee] -= 1


def what_if(
    events: Sequence[ReplayEvent],
    *,
    current: RuleSet,
    candidate: RuleSet,
    directory: Directory,
    world: World,
    report_from: datetime | None = None,
) -> WhatIfReport:
    """Return how the candidate rule set would have routed the events differently.

    Events before `report_from` are replayed to build the accounts' state but not compared.
    """
    before = simulate(events, rules=current, directory=directory, world=world)
    after = simulate(events, rules=candidate, directory=directory, world=world)
    diffs = [
        EventDiff(e.event_id, b, a)
        for e, b, a in zip(events, before, after, strict=True)
        if (report_from is None or e.at >= report_from) and not isinstance(e.payload, SlaEvent)
    ]
    before = [d.before for d in diffs]
    after = [d.after for d in diffs]
    changed = tuple(d for d in diffs if d.changed)
    summary = WhatIfSummary(
        events=len(diffs),
        changed=len(changed),
        assignee_changed=sum(d.before.assignee_id != d.after.assignee_id for d in diffs),
        tier_changed=sum(d.before.tier != d.after.tier for d in diffs),
        signal_changed=sum(d.before.signal != d.after.signal for d in diffs),
        conflict_changed=sum(d.before.conflict != d.after.conflict for d in diffs),
        handoffs_before=sum(o.assignee_id is not None for o in before),
        handoffs_after=sum(o.assignee_id is not None for o in after),
    )
    return WhatIfReport(current.version, candidate.version, changed, summary)
