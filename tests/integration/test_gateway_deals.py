"""Deals deleted in the CRM leave the pipeline and the win rate; restored ones come back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_gateway_support import NOW, gateway_settings, migrate_gateway, project

from tandem_api_gateway.adapters import read_store
from tandem_api_gateway.main import SCHEMA
from tandem_shared import events as ev
from tandem_shared.db import create_engine, session_factory
from tandem_shared.envelope import Envelope

pytestmark = pytest.mark.integration

HUBSPOT = ev.CrmSystem.HUBSPOT


@pytest_asyncio.fixture(loop_scope="session")
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate_gateway(infra)
    engine = create_engine(gateway_settings(infra).database, schema=SCHEMA)
    yield session_factory(engine)
    await engine.dispose()


def _envelope(payload: ev.Model, event_type: str, subject: str) -> Envelope:
    return Envelope.wrap(
        payload, type=event_type, source="/test", subject=subject, id=uuid.uuid4().hex, time=NOW
    )


def _deal(
    crm_id: str, account: str, at: Any, *, closed: bool = False, won: bool = False
) -> Envelope:
    deal = ev.DealUpserted(
        crm=HUBSPOT,
        crm_id=crm_id,
        account_key=account,
        amount=10_000,
        is_closed=closed,
        is_won=won,
        occurred_at=at,
    )
    return _envelope(deal, ev.EventType.DEAL_UPSERTED, account)


def _deleted(crm_id: str, account: str, at: Any) -> Envelope:
    deleted = ev.RecordDeleted(crm=HUBSPOT, object_type="deal", crm_id=crm_id, occurred_at=at)
    return _envelope(deleted, ev.EventType.RECORD_DELETED, account)


async def test_deleted_deals_are_neither_won_nor_lost_until_restored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tag = uuid.uuid4().hex[:8]
    account = f"deals-{tag}.com"
    t0, t1, t2 = NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    won, lost, open_, gone, back, late = (
        f"{name}-{tag}" for name in ("won", "lost", "open", "gone", "back", "late")
    )
    await project(
        sessions,
        [
            _deal(won, account, t0, closed=True, won=True),
            _deal(lost, account, t0, closed=True),
            _deal(open_, account, t0),
            _deal(gone, account, t0),
            _deleted(gone, account, t1),
            _deleted(gone, account, t1),  # a redelivered deletion changes nothing
            _deal(back, account, t0),
            _deleted(back, account, t1),
            _deal(back, account, t2),  # restored in the CRM after the deletion
            _deleted(late, account, t1),  # the deletion overtook the deal's last update
            _deal(late, account, t0, closed=True),
        ],
    )
    async with sessions() as session:
        facts = [
            row for row in await read_store.deal_facts(session) if row["account_key"] == account
        ]
    counted = {row["deal_id"].split(":", 1)[1] for row in facts}
    assert counted == {won, lost, open_, back}
    closed = [row for row in facts if row["is_closed"]]
    assert sorted(row["is_won"] for row in closed) == [False, True]  # win rate 1/2, not 1/4
