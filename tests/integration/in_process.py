"""Services built by their `build_service()` and run in the test's loop, without an HTTP server.

`running` does what `tandem_shared.bootstrap.run` does (start the clients, then the start hooks,
then the workers) and stops everything on the way out: harnesses build, tests never wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from tandem_shared.bootstrap import Infra
from tandem_shared.service import Worker, started


@dataclass
class WorkerTasks:
    """The workers of the running services and their tasks, in the same order."""

    workers: list[Worker]
    tasks: list[asyncio.Task[None]]

    def task_of(self, worker: Worker) -> asyncio.Task[None]:
        """Return the task running `worker` (to stop one worker and wait for it mid-test)."""
        return next(t for w, t in zip(self.workers, self.tasks, strict=True) if w is worker)


@asynccontextmanager
async def running(
    *services: Infra, workers: Sequence[Worker] | None = None
) -> AsyncIterator[WorkerTasks]:
    """Run the services (replicas: several) until the block ends, then stop their workers all at
    once, so replicas do not rebalance onto each other.

    `workers` replaces the services' own (a subset, or more replicas of one); by default every
    worker runs, read once the start hooks ran (one may add a worker: the gateway's projections).
    """
    async with AsyncExitStack() as stack:
        for infra in services:
            await stack.enter_async_context(started(infra.producer, infra.engine))
            await stack.enter_async_context(infra.lifecycle())
        chosen = [w for infra in services for w in infra.workers] if workers is None else workers
        tasks = [asyncio.create_task(w.run(), name=type(w).__name__) for w in chosen]
        try:
            yield WorkerTasks(list(chosen), tasks)
        finally:
            for worker in chosen:
                worker.stop()
            await asyncio.gather(*tasks)
