"""What every service's composition root uses: clients from settings, the CLI, the run."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tandem_shared.consumer import ConsumerLoop, Handler
from tandem_shared.db import create_engine, migrate, session_factory
from tandem_shared.dlq import command as dlq_command
from tandem_shared.events import EventType
from tandem_shared.kafka import create_producer
from tandem_shared.relay import OutboxRelay
from tandem_shared.service import (
    Runtime,
    Worker,
    WorkerFailed,
    serve,
    started,
    tune_gc,
    use_uvloop,
)
from tandem_shared.settings import Settings
from tandem_shared.telemetry import configure_logging, configure_tracing

# Start-up work that needs the started clients (seeding a database), run before HTTP and workers,
# and the matching shut-down work (closing a pool of its own).
Hook = Callable[[], Awaitable[None]]


@dataclass
class Infra:
    """A service's clients: database engine and sessions, producer, outbox relay."""

    settings: Settings
    schema: str
    engine: AsyncEngine
    sessions: async_sessionmaker  # type: ignore[type-arg]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    workers: list[Worker] = field(default_factory=list)
    hooks: list[tuple[Hook, Hook | None]] = field(default_factory=list)

    def on_start(self, start: Hook, *, stop: Hook | None = None) -> None:
        """Have `run` await `start` once the clients started, before HTTP and the workers (it
        may still add workers), and `stop` on the way out if `start` completed."""
        self.hooks.append((start, stop))

    @asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Run the start hooks in order; on exit, the stop hooks of those that ran, last first.

        `run` enters it; harnesses running the workers themselves enter it where `run` would.
        """
        async with AsyncExitStack() as stack:
            for start, stop in self.hooks:
                await start()
                if stop is not None:
                    stack.push_async_callback(stop)
            yield

    def consumer(
        self,
        *,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        dead_letter_group: str | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> ConsumerLoop:
        """Create a consumer loop of this service and register it as a worker."""
        loop = ConsumerLoop(
            group=group,
            topics=topics,
            handler=handler,
            sessions=self.sessions,
            settings=self.settings.kafka,
            dead_letter_group=dead_letter_group,
            after_commit=after_commit,
            known_types=frozenset(EventType),  # a type none of them is, is dead-lettered
        )
        self.workers.append(loop)
        return loop

    @property
    def runtime(self) -> Runtime:
        return Runtime(engine=self.engine, producer=self.producer, workers=self.workers)


def listen_dsn(url: str) -> str:
    """The plain libpq DSN asyncpg's LISTEN connection needs."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def build_infra(settings: Settings, *, schema: str, with_relay: bool = True) -> Infra:
    """Create (not start) the clients of a service."""
    engine = create_engine(settings.database, schema=schema)
    producer = create_producer(settings.kafka, client_id=settings.service)
    relay = OutboxRelay(
        engine=engine,
        producer=producer,
        schema=schema,
        settings=settings.outbox,
        listen_dsn=listen_dsn(settings.database.url),
    )
    infra = Infra(settings, schema, engine, session_factory(engine), producer, relay)
    if with_relay:
        infra.workers.append(relay)
    return infra


async def run(infra: Infra, app: FastAPI) -> None:
    """Start the producer and the hooks, serve HTTP and run the workers until a stop signal."""
    async with started(infra.producer, infra.engine), infra.lifecycle():
        await serve(
            app, host=infra.settings.http.host, port=infra.settings.http.port, workers=infra.workers
        )


class BuiltService(Protocol):
    """A wired service: its clients, workers and start hooks (on `infra`), and its HTTP app."""

    infra: Infra
    app: FastAPI


S = TypeVar("S", bound=Settings)


def serve_built(
    settings_type: type[S], build: Callable[[S], BuiltService]
) -> Callable[[Settings], Coroutine[Any, Any, None]]:
    """Return a `serve` that checks the settings' type, builds the service and runs it."""

    async def serve_fn(settings: Settings) -> None:
        if not isinstance(settings, settings_type):
            raise TypeError(f"{settings.service} runs with {settings_type.__name__}")
        service = build(settings)
        tune_gc()
        await run(service.infra, service.app)

    return serve_fn


def cli(
    *,
    service: str,
    schema: str,
    migrations: Path,
    serve_fn: Callable[[Settings], Coroutine[Any, Any, None]],
    settings_factory: Callable[[], Settings] = Settings,
    commands: dict[str, Callable[[Settings, list[str]], int]] | None = None,
    group: str | None = None,
) -> None:
    """Run a service's command line: `serve` (default), `migrate` or a service command."""
    extra = dict(commands or {})
    if group is not None:
        extra.setdefault("dlq", dlq_command(group))
    parser = argparse.ArgumentParser(prog=f"tandem-{service}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", *extra])
    args, rest = parser.parse_known_args()
    settings = settings_factory()
    settings = settings.model_copy(update={"service": service})
    configure_logging(settings.telemetry, service=service)
    if args.command == "migrate":
        asyncio.run(migrate(settings=settings.database, schema=schema, script_location=migrations))
        return
    if args.command == "serve":
        configure_tracing(settings.telemetry, service=service)
        # Every service's hot paths spend much of their CPU in the event loop and transports.
        use_uvloop()
        try:
            asyncio.run(serve_fn(settings))
        except WorkerFailed:
            sys.exit(1)  # serve logged the failure and stopped in order: the status is the news
        return
    sys.exit(extra[args.command](settings, rest))
