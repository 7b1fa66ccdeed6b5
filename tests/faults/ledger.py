"""What came out of the system for each accepted webhook, against what an undisturbed run of the
same kind of webhook yields: routing decisions, SLA clocks, Slack messages and emails per
(recipient, channel) as the fake servers received them, and the gateway's read-model rows.

Every account gets one webhook, so an account's outcome is that webhook's outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fault_config import account_key, roles_of
from fault_stack import FaultStack
from workload import Webhook

# An account's outcome: counters of things; the same shape for every webhook of a kind.
Signature = dict[str, Counter[Any]]
ALERT_PARTS = ("slack", "email")  # what a person receives: counted as alerts

QUERIES = {
    "decisions": "SELECT account_key, 'decision' FROM router.decisions WHERE account_key = ANY($1)",
    "clocks": "SELECT account_key, status FROM sla_monitor.clocks WHERE account_key = ANY($1)",
    # engagement_count: an event projected twice would count twice
    "gw.accounts": (
        "SELECT account_key, concat_ws(':', tier, engagement_count) FROM api_gateway.accounts"
        " WHERE account_key = ANY($1)"
    ),
    "gw.handoffs": (
        "SELECT account_key, concat_ws(':', signal, assignee_id, sla_status)"
        " FROM api_gateway.handoffs WHERE account_key = ANY($1)"
    ),
    "gw.alerts": "SELECT account_key, kind FROM api_gateway.alerts WHERE account_key = ANY($1)",
    "gw.deliveries": (
        "SELECT a.account_key, d.recipient_id || ':' || d.channel || ':' || d.status"
        " FROM api_gateway.alert_deliveries d JOIN api_gateway.alerts a USING (alert_id)"
        " WHERE a.account_key = ANY($1)"
    ),
    "gw.timeline": "SELECT account_key, kind FROM api_gateway.timeline WHERE account_key = ANY($1)",
}


async def signatures(stack: FaultStack, numbers: list[int]) -> dict[int, Signature]:
    """Read every account's outcome now (a fresh connection: PostgreSQL may have restarted)."""
    keys = [account_key(n) for n in numbers]
    number_of = {account_key(n): n for n in numbers}
    found: dict[int, Signature] = {n: {} for n in numbers}
    conn = await asyncpg.connect(stack.dsn, timeout=10)
    try:
        for part, query in QUERIES.items():
            for key, value in await conn.fetch(query, keys, timeout=30):
                found[number_of[key]].setdefault(part, Counter())[value] += 1
    finally:
        await conn.close()
    outside = await stack.outside.counts()
    for part in ALERT_PARTS:
        for number in numbers:
            if str(number) in outside[part]:
                found[number][part] = Counter(outside[part][str(number)])
    return {n: _by_role(n, signature) for n, signature in found.items()}


def _by_role(account: int, signature: Signature) -> Signature:
    """Name the account's own AE and marketer by role, wherever they appear."""
    roles = roles_of(account)

    def named(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return ":".join(roles.get(part, part) for part in value.split(":"))

    return {part: Counter({named(k): v for k, v in c.items()}) for part, c in signature.items()}


def compare(expected: Signature, got: Signature) -> tuple[int, int]:
    """Return (lost, duplicated): things expected and missing, things beyond what was expected."""
    lost = duplicated = 0
    for part in expected.keys() | got.keys():
        want, have = expected.get(part, Counter()), got.get(part, Counter())
        for item in want.keys() | have.keys():
            lost += max(0, want[item] - have[item])
            duplicated += max(0, have[item] - want[item])
    return lost, duplicated


@dataclass
class Verdict:
    accepted: int
    not_accepted: int
    alerts_out: int  # Slack messages and emails naming the scenario's accounts
    events: int  # the gateway's timeline entries of those accounts
    decisions: int
    clocks: int
    read_rows: int
    lost: int
    duplicated: int
    duplicated_messages: int  # of `duplicated`: Slack messages and emails sent twice
    duplicated_slack: int  # of those, Slack messages
    given_up: int  # deliveries alerts marked failed for good (shown as such on the gateway)
    settled_after: float | None  # seconds from `since` until every outcome was as expected
    problems: list[str] = field(default_factory=list)


async def settle(
    stack: FaultStack,
    hooks: list[Webhook],
    expected: dict[str, Signature],
    *,
    since: float,
    timeout: float,
    quiet: float,
    given_up_ok: bool = False,
) -> Verdict:
    """Wait until every accepted webhook's outcome has all its kind's expectation, then watch
    for `quiet` seconds more so late duplicates show; return the counts."""
    accepted = [h for h in hooks if h.accepted_at is not None]
    numbers = [h.account for h in accepted]
    deadline = time.monotonic() + timeout
    settled_after = None
    while True:
        try:
            found = await signatures(stack, numbers)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            found = None  # the database is not back yet
        # Settled: nothing expected is missing (what arrived twice is counted after `quiet`),
        # or, with `given_up_ok`, missing only as what alerts gave up on (each: a message and
        # a `delivered` on the gateway).
        if found is not None and not any(
            compare(expected[h.kind], found[h.account])[0]
            > (2 * _failed(found[h.account]) if given_up_ok else 0)
            for h in accepted
        ):
            settled_after = time.monotonic() - since
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    if settled_after is not None:
        await asyncio.sleep(quiet)
    found = await signatures(stack, numbers)
    return _verdict(hooks, accepted, found, expected, settled_after)


def _verdict(
    hooks: list[Webhook],
    accepted: list[Webhook],
    found: dict[int, Signature],
    expected: dict[str, Signature],
    settled_after: float | None,
) -> Verdict:
    lost = duplicated = 0
    repeated: Counter[str] = Counter()  # Slack messages and emails sent twice, by part
    problems = []
    for hook in accepted:
        miss, extra = compare(expected[hook.kind], found[hook.account])
        lost, duplicated = lost + miss, duplicated + extra
        want, got = expected[hook.kind], found[hook.account]
        for p in ALERT_PARTS:
            repeated[p] += compare({p: want.get(p, Counter())}, {p: got.get(p, Counter())})[1]
        if miss or extra:
            problems.append(f"{hook.kind} {account_key(hook.account)}: {dict(found[hook.account])}")

    def total(*parts: str) -> int:
        return sum(
            sum(found[h.account].get(p, Counter()).values()) for h in accepted for p in parts
        )

    return Verdict(
        accepted=len(accepted),
        not_accepted=len(hooks) - len(accepted),
        alerts_out=total(*ALERT_PARTS),
        events=total("gw.timeline"),
        decisions=total("decisions"),
        clocks=total("clocks"),
        read_rows=total("gw.accounts", "gw.handoffs", "gw.alerts", "gw.deliveries", "gw.timeline"),
        lost=lost,
        duplicated=duplicated,
        duplicated_messages=sum(repeated.values()),
        duplicated_slack=repeated["slack"],
        given_up=sum(_failed(found[h.account]) for h in accepted),
        settled_after=settled_after,
        problems=problems[:10],
    )


def _failed(signature: Signature) -> int:
    """Deliveries alerts gave up on, as the gateway shows them."""
    deliveries = signature.get("gw.deliveries", Counter())
    return sum(n for item, n in deliveries.items() if str(item).endswith(":failed"))


def expectation(found: dict[int, Signature], hooks: list[Webhook]) -> dict[str, Signature]:
    """Return each kind's outcome in an undisturbed run; every webhook of a kind must agree."""
    expected: dict[str, Signature] = {}
    for hook in hooks:
        got = found[hook.account]
        if expected.setdefault(hook.kind, got) != got:
            raise AssertionError(f"{hook.kind} outcomes differ: {expected[hook.kind]} vs {got}")
    return expected
