"""Projections of CRM merges: a merged-away deal or account is marked, so it counts once.

A merge names records by CRM id and may arrive before or after their upserts (other
partitions, a rebuild): each side records what it knows and settles whatever both sides now
know, so any order gives the same rows.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import projection_store as store
from tandem_api_gateway.adapters.tables import deals
from tandem_api_gateway.domain.merges import MergedKind, deal_id, kind_of, merged_away
from tandem_shared import events as ev
from tandem_shared.db import Statement, fetch, transaction_memory
from tandem_shared.envelope import Envelope


async def on_records_merged(envelope: Envelope, session: AsyncSession) -> None:
    """Mark the merged-away deals or accounts as folded into the winner."""
    event = envelope.payload(ev.RecordsMerged)
    losers = merged_away(event)
    kind = kind_of(event.object_type)
    if kind is MergedKind.DEAL:
        winner = deal_id(event.crm, event.winner_id)
        at = event.occurred_at
        for loser in losers:
            key = {"deal_id": deal_id(event.crm, loser)}
            # The loser's row may not exist yet: its upserts fill it in later, still merged.
            row = await store.lock_deal(session, key["deal_id"], at=at)
            values = {"merged_into": winner, "updated_at": max(row["updated_at"], at)}
            await store.update_row(session, deals, key=key, values=values)
    elif kind is MergedKind.ACCOUNT:
        await _one_settler_at_a_time(session, event.crm)
        await store.merge_crm_accounts(
            session, crm=event.crm.value, crm_ids=losers, merged_into=event.winner_id
        )
        await store.settle_account_merges(
            session, crm=event.crm.value, crm_ids=[*losers, event.winner_id]
        )


async def link_crm_account(
    session: AsyncSession, *, crm: ev.CrmSystem, crm_id: str, account_key: str
) -> None:
    """Remember which account a CRM record is, and settle the merges that involve it."""
    await _one_settler_at_a_time(session, crm)
    await store.link_crm_account(session, crm=crm.value, crm_id=crm_id, account_key=account_key)
    await store.settle_account_merges(session, crm=crm.value, crm_ids=[crm_id])


async def _one_settler_at_a_time(session: AsyncSession, crm: ev.CrmSystem) -> None:
    # A merge, its loser's upsert and its winner's upsert arrive on different partitions and
    # may run at the same time: each writes its part, then settles what all parts now show.
    # Run concurrently, none would see the others' uncommitted parts and the merge would never
    # settle; serialized per CRM (until commit), the last one sees the other two.
    # Held until commit: a batch takes it once.
    held = transaction_memory(session, "tandem_api_gateway.settle_locks", set[str])
    key = f"tandem.crm-merges.{crm.value}"
    if key not in held:
        await fetch(session, _SETTLE_LOCK, {"key": key})
        held.add(key)


_SETTLE_LOCK = Statement.of("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
