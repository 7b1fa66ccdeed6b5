"""The engine without pre-ping: connections the server dropped are replaced, not handed out."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tandem_shared.db import Statement, create_engine, fetch, session_factory

pytestmark = pytest.mark.integration

_PID = sa.text("SELECT pg_backend_pid()")


async def _terminate(url: str, pids: set[int]) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await conn.close()


async def test_connections_the_server_terminated_are_replaced_at_checkout(infra: Any) -> None:
    settings = infra.settings().database
    engine = create_engine(settings, schema="public")
    sessions = session_factory(engine)
    try:
        pids = set()
        async with sessions() as first, sessions() as second:  # two pooled connections
            pids = {await first.scalar(_PID), await second.scalar(_PID)}
        await _terminate(settings.url, pids)
        await asyncio.sleep(0.2)  # the event loop reads the connections' end
        async with sessions() as session, session.begin():
            assert await session.scalar(_PID) not in pids
            # The hot path's statements run on the same, new connection and transaction.
            [(pid,)] = await fetch(session, Statement.of("SELECT pg_backend_pid()"), {})
            assert pid == await session.scalar(_PID)
    finally:
        await engine.dispose()


async def test_statements_number_their_parameters_once() -> None:
    statement = Statement.of(
        "SELECT :a, CAST(:b AS jsonb), :a::text, ':c' WHERE x = :b", json=("b",)
    )
    assert statement.sql == "SELECT $1, CAST($2 AS jsonb), $1::text, ':c' WHERE x = $2"
    assert statement.names == ("a", "b")
