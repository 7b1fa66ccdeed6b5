"""Scenario 6: the same webhook ten times at once, the vendor's retry of it later, a resend under a
new delivery id, and a replay of ingest's raw archive: one event, one handoff, one message per
recipient and channel, and read models as after a single delivery."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fault_report import record
from fault_stack import FaultStack, long_mode
from ledger import Signature, settle
from scenario import QUIET
from workload import Driver, Webhook, hubspot, lead, meeting

pytestmark = pytest.mark.integration

COPIES = 10
LATER = 30.0 if long_mode() else 3.0  # seconds until the vendor's retry and the replay


def copies(hook: Webhook, count: int, *, delivery: str | None = None) -> list[Webhook]:
    return [
        dataclasses.replace(hook, delivery=delivery or hook.delivery, statuses=[], attempts=0)
        for _ in range(count)
    ]


async def test_one_webhook_many_times_and_replayed_yields_one_of_everything(
    stack: FaultStack, expected: dict[str, Signature]
) -> None:
    a, b, c = stack.pool.take(3)
    originals = [meeting(a), lead(b), hubspot(c)]
    since = datetime.now(UTC) - timedelta(seconds=5)
    driver = Driver(lambda: stack.url("ingest"))
    try:
        burst = [copy for hook in originals for copy in copies(hook, COPIES)]
        await asyncio.gather(*(driver.send(copy) for copy in burst))
        assert all(copy.accepted_at is not None for copy in burst), [c.statuses for c in burst]
        await asyncio.sleep(LATER)
        # The vendor's retry (same delivery id), and the generic sender's resend of the same
        # record under a new webhook id (its record id is what identifies it).
        later = [copy for hook in originals for copy in copies(hook, 2)]
        later += copies(originals[0], 2, delivery=f"msg_{uuid.uuid4().hex}")
        await asyncio.gather(*(driver.send(copy) for copy in later))
        assert all(copy.accepted_at is not None for copy in later)
    finally:
        await driver.close()
    window = ["--from", since.isoformat(), "--to", datetime.now(UTC).isoformat()]
    replayed = await asyncio.gather(
        *(
            stack.command("ingest", "replay", "--source", source, *window)
            for source in ("meetings", "salesforce", "hubspot")
        )
    )
    started = time.monotonic()
    for hook in originals:
        hook.accepted_at = started
    verdict = await settle(stack, originals, expected, since=started, timeout=90, quiet=QUIET)
    posted = len(burst) + len(later)
    record(
        "6 same webhook",
        f"{COPIES} concurrent copies x3 kinds, 2 retries + 2 resends {LATER:.0f} s later, "
        f"replay of 3 sources ({posted} posts)",
        dataclasses.replace(verdict, accepted=posted),
    )
    assert (verdict.lost, verdict.duplicated) == (0, 0), (verdict.problems, replayed)
    for report in replayed:  # the replay did republish, and nothing it found was new
        events = re.search(r"(\d+) events, (\d+) outboxed \((\d+) never published", report)
        assert events is not None and int(events[2]) >= 1 and events[3] == "0", report
