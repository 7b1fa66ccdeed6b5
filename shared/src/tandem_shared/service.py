"""Running a service: one process with its HTTP server, consumers and relay, stopped cleanly.

SIGTERM or SIGINT first stops the consumers and the relay (they finish the message in hand,
commit offsets and publish what committed), then the HTTP server, then closes the clients.
A worker that dies stops the others the same way, then `serve` raises `WorkerFailed`: the process
exits non-zero, so an orchestrator restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
import structlog
import uvicorn
import uvloop
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from tandem_shared.db import is_transient

log = structlog.get_logger(__name__)


class WorkerFailed(RuntimeError):
    """A worker (or the HTTP server) stopped on its own; the service stopped in order after it."""


class Worker(Protocol):
    """A long-running loop: consumers, the outbox relay, timer pollers."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Runtime:
    """The clients and loops a service runs with; readiness reads them."""

    engine: AsyncEngine
    producer: AIOKafkaProducer
    workers: list[Worker] = field(default_factory=list)
    checks: list[Callable[[], Awaitable[str | None]]] = field(default_factory=list)

    async def readiness(self) -> list[str]:
        """Return the problems that make the service not ready (empty when ready)."""
        problems: list[str] = []
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (OSError, sa.exc.DBAPIError) as exc:
            problems.append(f"database unreachable: {exc!r}")
        if not await _broker_reachable(self.producer):
            problems.append("broker unreachable")
        for worker in self.workers:
            healthy = getattr(worker, "healthy", None)
            if healthy is not None and not healthy():
                problems.append(f"{type(worker).__name__} stalled")
            # A consumer still joining, or beyond the partition count, does no work yet.
            if getattr(worker, "assigned", True) is False:
                problems.append(f"{type(worker).__name__} has no partition assigned")
        for check in self.checks:
            problem = await check()
            if problem:
                problems.append(problem)
        return problems


async def _broker_reachable(producer: AIOKafkaProducer) -> bool:
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=3)
    except (TimeoutError, OSError, Exception):  # noqa: BLE001 - any failure means not ready
        return False
    return True


# While PostgreSQL is away (restarting, failing over), requests cannot be kept: a 503 with a
# Retry-After tells vendors and people to come back, where a 500 and a trace would say a bug.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def answer_unavailable_with_503(app: FastAPI) -> None:
    """Answer requests that failed on the database or the network 503 + Retry-After, not 500."""

    async def unavailable(request: Request, exc: Exception) -> Response:
        if not is_transient(exc):
            raise exc  # a bug: the server's 500, with its trace in the log
        log.warning("request failed: database unavailable", path=request.url.path, error=repr(exc))
        return JSONResponse(
            {"detail": "temporarily unavailable: the database cannot be reached, retry later"},
            status_code=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
        )

    for kind in (
        sa_exc.DBAPIError,
        sa_exc.InterfaceError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        OSError,
    ):
        app.add_exception_handler(kind, unavailable)


def ops_router(runtime_getter: Callable[[], Runtime | None]) -> APIRouter:
    """Health, readiness and Prometheus metrics endpoints every service serves."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        runtime = runtime_getter()
        problems = ["starting"] if runtime is None else await runtime.readiness()
        if problems:
            response.status_code = 503
            return {"status": "not ready", "problems": problems}
        return {"status": "ready"}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class _Server(uvicorn.Server):
    # We own the signals, so consumers drain before the server stops.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    workers: Sequence[Worker],
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the HTTP server and the workers until SIGTERM/SIGINT, then stop them in order.

    Raises WorkerFailed, after the same orderly stop, when a worker or the server ended first.
    """
    # httptools parses HTTP in C, where h11 parses it in Python: less CPU per request.
    config = uvicorn.Config(
        app, host=host, port=port, http="httptools", log_config=None, access_log=False
    )
    server = _Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def supervise() -> None:
        await stop.wait()
        log.info("stopping: draining workers")
        for worker in workers:
            worker.stop()

    tasks = [asyncio.create_task(w.run(), name=type(w).__name__) for w in workers]
    http = asyncio.create_task(server.serve(), name="http")
    supervisor = asyncio.create_task(supervise(), name="supervisor")
    failed: list[str] = []
    try:
        # A worker that dies takes the service down: an orchestrator restarts it.
        done, _ = await asyncio.wait(
            [*tasks, http, supervisor], return_when=asyncio.FIRST_COMPLETED
        )
        if not stop.is_set():
            for task in done:
                error = task.exception()
                log.error("worker failed", task=task.get_name(), error=repr(error))
                failed.append(f"{task.get_name()}: {error!r}")
            stop.set()
        await supervisor
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        server.should_exit = True
        await http
        if on_stop is not None:
            await on_stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped")
    if failed:
        # A worker returning without being asked to stop is a failure too: nothing runs it now.
        raise WorkerFailed("; ".join(failed))


def tune_gc() -> None:
    """Collect less often, and never scan start-up objects: GC pauses made the latency tail.

    A webhook or a consumed event allocates many short-lived objects and keeps few, so the
    default young-generation threshold (700) collected every few events; frozen start-up objects
    (modules, models, the app) are left out of the rare full collections.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def use_uvloop() -> None:
    """Make the next `asyncio.run` use uvloop, whose event loop and transports are in C."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@contextlib.asynccontextmanager
async def started(producer: AIOKafkaProducer, engine: AsyncEngine) -> AsyncIterator[None]:
    """Start the producer; on exit flush it and dispose of the engine."""
    await producer.start()
    try:
        yield
    finally:
        await producer.stop()
        await engine.dispose()
