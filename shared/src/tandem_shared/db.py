"""Database helpers: the async engine, one schema per service, Alembic migrations per service."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import ClauseElement, event, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

from tandem_shared.settings import DatabaseSettings

# SQLSTATE classes that say nothing about the work at hand: connection exceptions, the server
# shutting down or starting, out of resources; and the two a retry resolves.
_TRANSIENT_CLASSES = ("08", "53", "57")
_TRANSIENT_STATES = ("40001", "40P01")


def _transient_state(state: str) -> bool:
    return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES


def is_transient(exc: BaseException) -> bool:
    """True for failures of the database or the network, which retrying cures
    (a consumer's batch, a worker's round, a vendor's request after a 503)."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    # asyncpg's own, where a hot path runs on the driver directly.
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return _transient_state(str(exc.sqlstate or ""))
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        for cause in (exc.orig, getattr(exc.orig, "__cause__", None)):
            if isinstance(cause, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
                return True  # the connection went while the adapter began a transaction
            state = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or "")
            if _transient_state(state):
                return True
    return isinstance(exc, InterfaceError | DisconnectionError)


T = TypeVar("T")


def _json_dumps(value: Any) -> str:
    # orjson instead of the stdlib for JSON/JSONB parameters: service states are large documents.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(settings: DatabaseSettings, *, schema: str) -> AsyncEngine:
    """Create the service's engine; its connections see its own schema first.

    No pre-ping (a round trip per checkout): a connection the server closed is dropped at
    checkout from asyncpg's own state, and one that fails in use is invalidated by SQLAlchemy
    (with every connection checked out before it) while the caller's transaction is retried.
    """
    engine = create_async_engine(
        settings.url,
        pool_size=settings.pool_size,
        echo=settings.echo,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": {"search_path": f"{schema},public"}},
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Make the pool replace a connection the server has closed (terminated, restarted)."""
    # asyncpg learns of the closed socket from the event loop: no round trip to ask.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the database closed this connection")


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    """Return the session factory units of work open sessions from."""
    return async_sessionmaker(engine, expire_on_commit=False)


def transaction_memory(session: AsyncSession, name: str, factory: Callable[[], T]) -> T:
    """Return what a handler keeps under `name` for the session's current transaction.

    For facts that hold until the transaction ends (rows or advisory locks it holds, and their
    values): a new transaction, or a savepoint, starts with a fresh `factory()`, so a rollback
    cannot leave anything behind.
    """
    sync = session.sync_session
    current = (sync.get_transaction(), sync.get_nested_transaction())
    if current[0] is None:
        raise RuntimeError(f"{name}: no transaction is open on this session")
    kept = sync.info.get(name)
    if kept is not None and kept[0][0] is current[0] and kept[0][1] is current[1]:
        value: T = kept[1]
        return value
    value = factory()
    sync.info[name] = (current, value)
    return value


def alembic_config(*, script_location: Path, url: str, schema: str) -> Config:
    """Build the Alembic configuration of one service's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


async def migrate(*, settings: DatabaseSettings, schema: str, script_location: Path) -> None:
    """Create the service's schema if needed and upgrade it to the newest revision."""
    engine = create_async_engine(settings.url)
    try:
        async with engine.begin() as conn:
            # CREATE SCHEMA needs database-level rights even when the schema exists: a DBA may
            # have created it for a role that has none.
            exists = await conn.scalar(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            )
            if not exists:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await engine.dispose()
    cfg = alembic_config(script_location=script_location, url=settings.url, schema=schema)
    # Alembic's env runs its own event loop: keep it off ours.
    await asyncio.to_thread(command.upgrade, cfg, "head")


# ---- the hot path: statements run on the transaction's asyncpg connection ------------------
#
# A statement through the session costs about three times the CPU of the same statement on
# asyncpg itself (measured: ~215 µs against ~75 µs). Consumer handlers run a few statements per
# event, so theirs go straight to the connection of the session's transaction.

_ASYNCPG_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

# A quoted literal (left alone) or a :name parameter (not a ::cast).
_NAME = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL with :name parameters, turned into PostgreSQL's numbered ones once."""

    sql: str  # with $1, $2, ...
    names: tuple[str, ...]  # the parameter each number stands for
    json: frozenset[str]  # parameters sent as JSON (json/jsonb columns)

    @classmethod
    def of(cls, sql: str, *, json: Iterable[str] = ()) -> Statement:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] is None:
                return match[0]
            if match[1] not in names:
                names.append(match[1])
            return f"${names.index(match[1]) + 1}"

        numbered = _NAME.sub(number, sql)
        unknown = set(json) - set(names)
        if unknown:
            raise ValueError(f"JSON parameters not in the statement: {sorted(unknown)}")
        return cls(numbered, tuple(names), frozenset(json))

    @classmethod
    def compiled(cls, clause: ClauseElement) -> Statement:
        """A SQLAlchemy statement as PostgreSQL runs it (asyncpg's numbered parameters)."""
        compiled = clause.compile(dialect=_ASYNCPG_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        return cls(str(compiled), tuple(compiled.positiontup or ()), frozenset())


async def fetch(
    session: AsyncSession, statement: Statement, params: Mapping[str, Any]
) -> list[asyncpg.Record]:
    """Run a statement in the session's transaction; failures raise as SQLAlchemy's do."""
    connection = await _driver(session)
    args = [
        _json_dumps(params[name]) if name in statement.json else params[name]
        for name in statement.names
    ]
    records: list[asyncpg.Record] = await _run(
        session, statement, connection.fetch(statement.sql, *args)
    )
    return records


async def execute_many(
    session: AsyncSession, statement: Statement, params: Sequence[Mapping[str, Any]]
) -> None:
    """Run a statement once per parameter set, in one round trip (asyncpg pipelines them)."""
    if not params:
        return
    connection = await _driver(session)
    args = [
        [_json_dumps(p[name]) if name in statement.json else p[name] for name in statement.names]
        for p in params
    ]
    await _run(session, statement, connection.executemany(statement.sql, args))


# asyncpg's protocol left mid-operation (the server went away under it): the connection is of no
# further use, and SQLAlchemy, which did not run the statement, does not know.
_BrokenProtocol = asyncpg.exceptions._base.InternalClientError


async def _run(session: AsyncSession, statement: Statement, call: Awaitable[T]) -> T:
    """Await a driver call, raising its failures as SQLAlchemy's (the consumer tells transient
    ones apart by SQLSTATE as for any statement)."""
    try:
        return await call
    except asyncpg.PostgresError as exc:
        raise DBAPIError(statement.sql, None, exc) from exc
    except asyncpg.InterfaceError as exc:
        raise InterfaceError(statement.sql, None, exc) from exc
    except _BrokenProtocol as exc:
        await _drop(await session.connection(), exc)
        raise InterfaceError(statement.sql, None, exc, connection_invalidated=True) from exc


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    if session.sync_session.get_transaction() is None:
        await session.connection()  # begins the session's transaction, as execute() would
    kept = transaction_memory(session, "tandem_shared.driver", dict[str, asyncpg.Connection])
    connection = kept.get("connection")
    if connection is None:
        bound = await session.connection()
        connection = (await bound.get_raw_connection()).driver_connection
        if connection is None:
            raise InterfaceError(None, None, RuntimeError("the session's connection is closed"))
        if not connection.is_in_transaction():
            await _begin(bound)
        kept["connection"] = connection
    return connection


async def _begin(bound: AsyncConnection) -> None:
    """Open the transaction SQLAlchemy's asyncpg adapter opens at its first statement.

    Through the adapter itself (its BEGIN, with the engine's isolation level), so that the
    statement run next is the transaction's first round trip, not a `SELECT 1` before it.
    """
    adapted = (await bound.get_raw_connection()).dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    mutex = getattr(adapted, "_execute_mutex", None)
    if start is None or mutex is None or getattr(adapted, "_transaction", False) is not None:
        # An adapter of another shape: let its first statement open the transaction.
        await bound.exec_driver_sql("SELECT 1")
        return
    try:
        async with mutex:
            await start()
    except Exception as exc:
        # As a failing statement would raise it: the consumer tells transient ones apart.
        await _drop(bound, exc)
        raise DBAPIError("BEGIN", None, exc, connection_invalidated=True) from exc


async def _drop(bound: AsyncConnection, exc: Exception) -> None:
    """Drop from the pool a connection that failed where SQLAlchemy did not see it (its own
    statements invalidate such a connection themselves); it may be gone already."""
    with contextlib.suppress(Exception):
        await bound.invalidate(exc)
