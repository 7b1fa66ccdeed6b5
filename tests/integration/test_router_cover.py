"""The router over the real broker and database: out-of-office AEs and their cover.

Ava (AE) is on holiday with Ben as her cover, who takes one open handoff at most; Chloé (AE) is
away with Cal as her cover. A tier 1 meeting goes to Ben, the next one (Ben now full, counted from
the database's open handoffs) falls back to the account's SDR; a tier 2 FYI goes to Cal.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from test_router_support import Router, at, listed, new_schema, running_router

from tandem_router.config import RouterConfig, load_config
from tandem_shared.directory import Period, Person, Role
from tandem_shared.events import AlertKind, Tier

pytestmark = pytest.mark.integration


def on_holiday(person: Person, cover_id: str) -> Person:
    """The person out of office from yesterday for a week, covered by `cover_id`."""
    period = Period(start=at(24 * 60), end=at(0) + timedelta(days=7))
    return person.model_copy(update={"out_of_office": (period,), "cover_id": cover_id})


def cover_config(config: RouterConfig) -> RouterConfig:
    directory = config.directory
    cal = Person(
        id="cal.ae",
        name="Cal",
        email="cal@tandem.example",
        role=Role.AE,
        team="sales",
        manager_id="sam.manager",
    )
    changed = {
        "ava.ae": lambda p: on_holiday(p, "ben.ae"),
        "ben.ae": lambda p: p.model_copy(update={"capacity": 1}),
        "chloe.ae": lambda p: on_holiday(p, "cal.ae"),
    }
    people = tuple(changed.get(p.id, lambda p: p)(p) for p in directory.people)
    updated = directory.model_copy(update={"people": (*people, cal)})
    return RouterConfig(rules=config.rules, directory=updated)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def router(infra: Any) -> AsyncIterator[Router]:
    """One router replica over the example rules and a directory with AEs away."""
    settings = infra.settings()
    schema = await new_schema(settings)
    group = f"router-cover-{uuid.uuid4().hex[:8]}"
    config = cover_config(load_config(settings.config_dir))
    assert config.rules.out_of_office_cover  # the example rule set has it on
    async with running_router(infra, config, schema=schema, group=group, replicas=1) as running:
        yield running


async def test_tier1_goes_to_the_cover_then_the_sdr_once_the_cover_is_full(
    router: Router, unique: str
) -> None:
    first, second = f"acme-{unique}.com", f"umbrella-{unique}.com"
    for key in (first, second):
        await listed(router, key, Tier.T1, ae_id="ava.ae", sdr_id="dan.sdr", territory="na-east")
    await router.meeting(first)
    [routing] = await router.outputs.decision(first)
    assert (routing.assignee_id, routing.tier) == ("ben.ae", Tier.T1)
    trail = "\n".join(routing.explanation)
    assert "ava.ae is out of office until " in trail and "; handed to cover ben.ae" in trail
    alerts = await router.outputs.alerts(first, {AlertKind.HANDOFF})
    assert alerts[AlertKind.HANDOFF].recipient_ids == ["ben.ae"]
    assert "handed to cover ben.ae" in (alerts[AlertKind.HANDOFF].reason or "")
    state = await router.account(first, lambda s: bool(s.handoffs))
    assert state.handoffs[-1].assignee_id == "ben.ae"

    # Ben now holds one open handoff (his capacity): the next tier 1 meeting takes the SDR path.
    await router.meeting(second)
    [fallback] = await router.outputs.decision(second)
    assert fallback.assignee_id == "dan.sdr"
    trail = "\n".join(fallback.explanation)
    assert "cover ben.ae is at capacity (1/1 open handoffs): falling back to the SDR path" in trail
    assert "dan.sdr is the account's SDR" in trail


async def test_tier2_ae_alert_goes_to_the_cover(router: Router, unique: str) -> None:
    key = f"initech-{unique}.fr"
    await listed(router, key, Tier.T2, ae_id="chloe.ae", sdr_id="eve.sdr", territory="emea")
    await router.meeting(key)
    [routing] = await router.outputs.decision(key)
    assert routing.assignee_id == "eve.sdr"
    assert "cal.ae" in routing.notified_ids and "chloe.ae" not in routing.notified_ids
    assert any("FYI to cover cal.ae" in line for line in routing.explanation)
    alerts = await router.outputs.alerts(key, {AlertKind.HANDOFF, AlertKind.HANDOFF_FYI})
    assert alerts[AlertKind.HANDOFF].recipient_ids == ["eve.sdr"]
    assert alerts[AlertKind.HANDOFF_FYI].recipient_ids == ["cal.ae"]
