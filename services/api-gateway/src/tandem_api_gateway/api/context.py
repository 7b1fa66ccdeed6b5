"""What request handlers need, created once by the composition root and kept on the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.api.rate_limit import RateLimiter
from tandem_api_gateway.feed import Feed
from tandem_api_gateway.settings import GatewaySettings
from tandem_shared.directory import Directory
from tandem_shared.uow import UnitOfWork, unit_of_work


@dataclass
class Gateway:
    """The gateway's collaborators: sessions, settings, clock, live feed and rate limiter."""

    settings: GatewaySettings
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    feed: Feed = field(default_factory=Feed)
    limiter: RateLimiter | None = None
    directory: Directory | None = None  # people.yaml: the first check of actions on handoffs

    def __post_init__(self) -> None:
        if self.limiter is None:
            options = self.settings.gateway
            self.limiter = RateLimiter(
                rate=options.rate_limit_per_second, burst=options.rate_limit_burst
            )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Open a session for reads."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        """Open a unit of work: one transaction and the events it emits, committed on success."""
        async with unit_of_work(self.sessions) as uow:
            yield uow


def get_gateway(request: Request) -> Gateway:
    """Return the gateway the app was created with."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
