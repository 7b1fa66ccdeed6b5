"""Rebuilding the read models from the topics: truncate, switch to a fresh group, re-consume.

A fresh consumer group starts at the beginning of every topic on any broker (the embedded one
refuses offset commits from outside a group's generation, so rewinding the old group is not an
option). The group in use is stored in `projection_state`, so every replica started afterwards
reads with it. Run the rebuild with the gateway's consumers stopped (scaled to zero): a live
replica would keep projecting into the tables being rebuilt.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_api_gateway.adapters import projection_store as store
from tandem_shared.consumer import ConsumerLoop

_GENERATION = re.compile(r"^(?P<base>.+)\.rebuild-(?P<n>\d+)$")


def next_group(current: str) -> str:
    """Return the group after `current`: `<base>.rebuild-<n+1>`."""
    match = _GENERATION.fullmatch(current)
    if match is None:
        return f"{current}.rebuild-1"
    return f"{match['base']}.rebuild-{int(match['n']) + 1}"


async def consume_until_caught_up(loop: ConsumerLoop, *, within_seconds: float) -> None:
    """Run a consumer loop until it has processed everything on its partitions, then stop it."""
    task = asyncio.create_task(loop.run(), name=f"rebuild-{loop.group}")
    deadline = time.monotonic() + within_seconds
    try:
        while not loop.caught_up():
            if task.done():
                task.result()  # re-raise what ended the loop
                raise RuntimeError("the consumer stopped before catching up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"rebuild did not catch up within {within_seconds} s")
            await asyncio.sleep(0.1)
    finally:
        loop.stop()
        await task


async def rebuild(
    *,
    sessions: async_sessionmaker[AsyncSession],
    consumer_for: Callable[[str], ConsumerLoop],
    default_group: str,
    within_seconds: float = 600.0,
) -> str:
    """Empty the read models and the inbox, then re-consume every topic with a fresh group."""
    async with sessions() as session, session.begin():
        group = next_group(await store.projection_group(session, default=default_group))
        await store.truncate_read_models(session)
        await store.set_projection_group(session, group)
    await consume_until_caught_up(consumer_for(group), within_seconds=within_seconds)
    return group
