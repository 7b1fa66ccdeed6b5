"""The alignment metrics the slow way: every fact loaded and the definitions applied in Python.

Not on any request path (`metrics_store` aggregates in the database); kept as the reference the
database's aggregation is checked against, fact by fact, in the tests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import read_store
from tandem_api_gateway.domain import metrics as m
from tandem_shared.events import Signal, Tier


async def reference_report(session: AsyncSession, scope: m.Scope) -> m.AlignmentReport:
    """Load every account, handoff and deal and compute the metrics in Python."""
    accounts = [_account(r) for r in await read_store.account_facts(session)]
    handoffs = [_handoff(r) for r in await read_store.handoff_facts(session)]
    deals = [_deal(r) for r in await read_store.deal_facts(session)]
    return m.alignment_report(accounts=accounts, handoffs=handoffs, deals=deals, scope=scope)


def _tier(value: str | None) -> Tier:
    # Tier 3 also covers accounts without a tier (outside the programme).
    return Tier(value) if value else Tier.T3


def _account(row: dict[str, Any]) -> m.AccountFacts:
    return m.AccountFacts(
        account_key=row["account_key"],
        tier=_tier(row["tier"]),
        in_tal=row["in_tal"],
        sales_activity_at=tuple(row["sales_activity_at"] or ()),
        marketing_activity_at=tuple(row["marketing_activity_at"] or ()),
    )


def _handoff(row: dict[str, Any]) -> m.HandoffFacts:
    marketing = (row["assignee_role"] or "").lower() in ("marketer", "marketing")
    return m.HandoffFacts(
        handoff_id=row["handoff_id"],
        tier=_tier(row["tier"]),
        signal=Signal(row["signal"]),
        handed_off_at=row["decided_at"] or row["sla_started_at"] or row["sort_at"],
        outcome=m.SlaOutcome(row["sla_outcome"] or "running"),
        outcome_at=row["outcome_at"],
        first_touch_at=row["first_touch_at"],
        team=m.Team.MARKETING if marketing else m.Team.SALES,
    )


def _deal(row: dict[str, Any]) -> m.DealFacts:
    return m.DealFacts(
        deal_id=row["deal_id"],
        tier=_tier(row["tier"]),
        in_tal=bool(row["in_tal"]),
        created_at=row["created_at"],
        amount=row["amount"],
        is_closed=row["is_closed"],
        is_won=row["is_won"],
        closed_at=row["closed_at"],
    )
