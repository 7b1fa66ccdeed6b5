"""The per-day metric aggregates the triggers keep equal a full recount from the rows, after a
random history (merges, deletions, out-of-order arrivals) and after a rebuild replays it; the
metrics that read them equal the Python definitions for periods cut anywhere in a day (the
periods of test_gateway_read_side.py cover the rest).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from conftest import Infra
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_gateway_read_side import Events, _day
from test_gateway_support import own_schema, project

from tandem_api_gateway.adapters import metric_facts, metrics_store
from tandem_api_gateway.adapters.projection_store import truncate_read_models
from tandem_api_gateway.adapters.tables import METRIC_DAYS
from tandem_api_gateway.domain import metrics as m
from tandem_shared import events as ev

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The gateway's tables in a schema of this module's own."""
    async with own_schema(infra, "gw_days") as found:
        yield found


_COUNTS = {"handoff_days": 4, "handoff_touch_months": 5, "deal_days": 3}  # keys, then counts


async def _aggregates(sessions: async_sessionmaker[AsyncSession]) -> dict[str, set[Any]]:
    """Every aggregate row, rows whose counts all went back to zero left out."""
    found: dict[str, set[Any]] = {}
    async with sessions() as session:
        for table in METRIC_DAYS:
            rows = [tuple(r) for r in await session.execute(sa.select(table))]
            keys = _COUNTS.get(table.name)
            found[table.name] = {r for r in rows if keys is None or any(r[keys:])}
    return found


async def _recounted(sessions: async_sessionmaker[AsyncSession]) -> dict[str, set[Any]]:
    async with sessions() as session, session.begin():
        await session.execute(sa.text("SELECT metric_days_recount()"))
    return await _aggregates(sessions)


async def _empty(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await truncate_read_models(session)


async def test_incremental_aggregates_equal_a_recount_and_survive_a_rebuild(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _empty(sessions)
    history = Events(4).history()  # shuffled: clocks, merges and deletions out of order
    await project(sessions, history)
    incremental = await _aggregates(sessions)
    assert all(incremental.values())  # handoffs and deals were counted
    assert await _recounted(sessions) == incremental

    # A rebuild empties the aggregates with the read models; the replay of the topics (in
    # their order: a deal's upserts apply in arrival order) counts them again.
    await _empty(sessions)
    assert not any((await _aggregates(sessions)).values())
    await project(sessions, history)
    rebuilt = await _aggregates(sessions)
    assert rebuilt == incremental
    assert await _recounted(sessions) == rebuilt

    # Periods cut anywhere in a day: whole days from the aggregates, the rest from the rows.
    periods = [
        (_day(20) + timedelta(hours=1), _day(20) + timedelta(hours=9)),  # inside one day
        (_day(20) + timedelta(hours=20), _day(21) + timedelta(hours=3)),  # across one midnight
        (_day(7) + timedelta(minutes=1), _day(52) - timedelta(microseconds=1)),
        (_day(31) + timedelta(hours=23, minutes=59), None),
        # A whole month (February) from the touch times' histograms, partial ones at both ends.
        (_day(20) + timedelta(hours=3), _day(59) + timedelta(hours=5)),
        (None, _day(59)),  # January and February whole, no edge
    ]
    scopes = [
        m.Scope(start=start, end=end, tier=tier, team=team)
        for start, end in periods
        for tier, team in ((None, None), (ev.Tier.T2, m.Team.SALES))
    ]
    for scope in scopes:
        ours = await metrics_store.alignment_report(sessions, scope)
        async with sessions() as session:
            assert ours == await metric_facts.reference_report(session, scope), scope


async def test_touch_buckets_are_in_value_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The percentiles take a bucket's rank for the rank of its values: buckets must never
    # decrease as the touch time grows, and must cut each doubling finely.
    values = sorted(
        {-5.0, 0.0, 0.999, 1.0, 1.0001, 59.9, 60.0, 3600.0, 86400.5, 1e9}
        | {2 ** (n / 7) for n in range(200)}
    )
    ordered = "SELECT array_agg(touch_bucket(v) ORDER BY v) FROM unnest(CAST(:v AS float8[])) v"
    async with sessions() as session:
        found = await session.scalar(sa.text(ordered), {"v": values})
    assert found[: values.index(1.0)] == [0] * values.index(1.0)  # under a second
    assert found == sorted(found)
    by_bucket: dict[int, list[float]] = {}
    for bucket, value in zip(found, values, strict=True):
        by_bucket.setdefault(bucket, []).append(value)
    assert all(max(v) < 1.25 * min(v) for b, v in by_bucket.items() if b)  # an eighth of 2x
