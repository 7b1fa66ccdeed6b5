"""Tier paths: tier 1 -> the account AE, tier 2 -> the account SDR else the territory pool (with an
FYI to the AE), tier 3 -> round robin over the SDR pool. The rule set maps tiers to paths; an AE out
of office, or one handing a handoff on, is stood in for by their cover (see cover.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from tandem_router.domain.cover import Cover, away_note, find_cover
from tandem_router.domain.model import RoundRobinState
from tandem_router.domain.ownership import OwnerRole, Ownership
from tandem_router.domain.round_robin import pick, why_not_now
from tandem_router.domain.rules import RouteKind, RuleSet
from tandem_shared.directory import Directory, Person
from tandem_shared.events import Tier


@dataclass(frozen=True)
class Route:
    """Who takes the handoff (None: nobody, see `failure`), who hears about it, and why."""

    assignee: Person | None
    rule: str
    explanation: tuple[str, ...]
    round_robin: RoundRobinState
    fyi: tuple[Person, ...] = ()
    failure: str | None = None
    blocked_by_conflict: bool = False


@dataclass(frozen=True)
class Roster:
    """The run-time facts routing reads: people, pool state, open handoffs, the clock."""

    directory: Directory
    round_robin: RoundRobinState
    open_handoffs: Mapping[str, int]
    now: datetime


def route_handoff(
    *,
    tier: Tier,
    territory: str | None,
    ownership: Ownership,
    rules: RuleSet,
    roster: Roster,
    exclude: Collection[str] = (),
) -> Route:
    """Return the route of a handoff at an account of this tier, by the rule set's tier path."""
    tier_rule = rules.tiers[tier]
    rule = f"tier {tier.value} -> {_describe(tier_rule.route)}"
    ask = _Ask(rule, territory, ownership, rules, roster, exclude)
    if tier_rule.route == "ae":
        route = _to_ae(ask)
    elif tier_rule.route == "sdr":
        route = _to_sdr(ask)
    else:
        route = _to_pool(ask)
    if tier_rule.fyi_ae and route.assignee is not None:
        route = _with_ae_fyi(route, ask)
    return route


@dataclass(frozen=True)
class _Ask:
    """One handoff being routed: the tier rule applied and the facts every path reads."""

    rule: str
    territory: str | None
    ownership: Ownership
    rules: RuleSet
    roster: Roster
    exclude: Collection[str]

    def blocked(self, role: OwnerRole) -> Route | None:
        """The route that stops at an open ownership conflict about the role, if there is one."""
        conflict = self.ownership.conflict(role)
        if conflict is None:
            return None
        return Route(
            None,
            self.rule,
            (),
            self.roster.round_robin,
            failure=conflict.reason,
            blocked_by_conflict=True,
        )

    def away(self, ae: Person) -> str | None:
        """Why the AE cannot take it now when covering is on and they are out of office."""
        return away_note(ae, self.roster.now) if self.rules.out_of_office_cover else None

    def cover(self, ae: Person, exclude: Collection[str]) -> Cover:
        """The away AE's cover, or why nobody covers."""
        return find_cover(
            ae,
            directory=self.roster.directory,
            open_handoffs=self.roster.open_handoffs,
            now=self.roster.now,
            enforce_working_hours=self.rules.enforce_working_hours,
            exclude=exclude,
        )


def _describe(route: RouteKind) -> str:
    return {
        "ae": "the account AE",
        "sdr": "the account SDR, else the territory pool",
        "round_robin": "round robin over the territory's SDR pool",
    }[route]


def _to_ae(ask: _Ask) -> Route:
    if (blocked := ask.blocked("ae")) is not None:
        return blocked
    ae = ask.ownership.ae
    if ae is None:
        return _prefixed(_to_sdr(ask), "no AE owns the account: falling back to the SDR path")
    owns = f"{ae.id} owns the account as its AE"
    if ae.id in ask.exclude:
        # The AE handed it on: whoever stands in for them when away takes it, else the SDR path.
        why = f"{ae.id} asked to hand it on"
    elif (away := ask.away(ae)) is not None:
        why = away
    else:
        return Route(ae, ask.rule, (owns,), ask.roster.round_robin)
    cover = ask.cover(ae, ask.exclude)
    if cover.person is not None:
        return Route(
            cover.person, ask.rule, (owns, f"{why}; {cover.reason}"), ask.roster.round_robin
        )
    fallback = f"{why} and {cover.reason}: falling back to the SDR path"
    return _prefixed(_to_sdr(ask), owns, fallback)


def _to_sdr(ask: _Ask) -> Route:
    if (blocked := ask.blocked("sdr")) is not None:
        return blocked
    sdr, roster = ask.ownership.sdr, ask.roster
    if sdr is None:
        return _prefixed(_to_pool(ask), "no account SDR")
    why_not = why_not_now(
        sdr,
        now=roster.now,
        open_handoffs=roster.open_handoffs,
        enforce_working_hours=ask.rules.enforce_working_hours,
        exclude=ask.exclude,
    )
    if why_not is None:
        return Route(sdr, ask.rule, (f"{sdr.id} is the account's SDR",), roster.round_robin)
    return _prefixed(_to_pool(ask), f"account SDR {sdr.id} is {why_not}")


def _to_pool(ask: _Ask) -> Route:
    rules, roster = ask.rules, ask.roster
    names = [rules.pool_for(ask.territory)]
    if names[0] != rules.default_pool:
        names.append(rules.default_pool)
    notes: list[str] = []
    state = roster.round_robin
    for name in names:
        result = pick(
            pool=name,
            members=rules.pools[name].members,
            directory=roster.directory,
            state=state,
            open_handoffs=roster.open_handoffs,
            now=roster.now,
            enforce_working_hours=rules.enforce_working_hours,
            exclude=ask.exclude,
        )
        notes.append(result.reason)
        if result.person is not None:
            return Route(result.person, ask.rule, tuple(notes), result.state)
    return Route(None, ask.rule, tuple(notes), state, failure="; ".join(notes))


def _with_ae_fyi(route: Route, ask: _Ask) -> Route:
    ae, assignee = ask.ownership.ae, route.assignee
    if ae is None or assignee is None or ae.id == assignee.id:
        return route
    away = ask.away(ae)
    if away is None:
        return _noted(route, f"{ae.id}, the account AE, gets an FYI", fyi=ae)
    if ae.cover_id == assignee.id:
        return _noted(route, f"{away}; cover {ae.cover_id} already has the handoff")
    cover = ask.cover(ae, exclude=())
    if cover.person is None:
        return _noted(
            route, f"{away} and {cover.reason}: no AE FYI ({assignee.id} has the handoff)"
        )
    return _noted(route, f"{away}; FYI to cover {cover.person.id}", fyi=cover.person)


def _prefixed(route: Route, *notes: str) -> Route:
    return replace(route, explanation=(*notes, *route.explanation))


def _noted(route: Route, note: str, *, fyi: Person | None = None) -> Route:
    told = route.fyi if fyi is None else (*route.fyi, fyi)
    return replace(route, explanation=(*route.explanation, note), fyi=told)
