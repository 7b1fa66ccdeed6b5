"""The round robin survives a router restart: the next rep in turn, not the first of the pool."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from test_router_support import (
    listed,
    new_schema,
    router_config,
    running_router,
)

from tandem_router.adapters import repository
from tandem_shared.events import Tier

pytestmark = pytest.mark.integration

# Three equal reps: a router that forgot the pool's credit would start again at the first.
REPS = {"rho.sdr": (10, 1), "sia.sdr": (10, 1), "teo.sdr": (10, 1)}
TERRITORY = "restart-test"


async def test_round_robin_continues_across_a_restart(infra: Any, unique: str) -> None:
    settings = infra.settings()
    config = router_config(settings.config_dir, reps=REPS, pool="restart-sdrs", territory=TERRITORY)
    schema = await new_schema(settings)
    group = f"router-restart-{uuid.uuid4().hex[:8]}"
    ours: set[str] = set()
    assignees: list[str] = []
    for run, accounts in enumerate((2, 2)):  # two router lifetimes over one schema and group
        async with running_router(
            infra, config, schema=schema, group=group, replicas=1, ours=ours
        ) as router:
            for n in range(accounts):
                key = f"rr{run}{n}-{unique}.com"
                await listed(router, key, Tier.T3, territory=TERRITORY)
                await router.meeting(key)
                [routing] = await router.outputs.decision(key)
                assignees.append(routing.assignee_id)
            async with router.sessions() as session:
                pools = await repository.load_round_robin(session)
    # one turn each, then the first again: the second router carried on where the first stopped
    assert assignees == ["rho.sdr", "sia.sdr", "teo.sdr", "rho.sdr"]
    assert pools.pool("restart-sdrs").assigned == {"rho.sdr": 2, "sia.sdr": 1, "teo.sdr": 1}
