"""The fault suite's session: one stack (its own broker and database, the five services) shared by
every scenario, an undisturbed baseline run that fixes what each kind of webhook must yield, and
the summary table printed at the end. TANDEM_FAULTS=long (`make test-faults`) runs the long one.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).parent))  # the suite's helper modules

from fault_report import ROWS
from fault_stack import SERVICES, FaultStack, close_stack, long_mode, open_infra, open_stack
from ledger import Signature, expectation, signatures
from workload import KINDS, Driver, mixed


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    head = ["scenario", "injected faults", "webhooks in", "alerts out", "lost", "dup", "recovery"]
    rows = [head] + [r.cells() for r in ROWS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    mode = "long" if long_mode() else "short"
    terminalreporter.write_sep("=", f"fault scenarios ({mode})")
    for row in rows:
        terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[FaultStack]:
    # Logs and config; kept when a test failed (pytest's own basetemp is pruned by other runs).
    tmp = Path(tempfile.mkdtemp(prefix="tandem-faults-"))
    bootstrap, database, broker = await open_infra(tmp)
    running = None
    try:
        # The router seeds accounts.yaml in one statement: about 6,500 accounts at most.
        running = await open_stack(tmp, bootstrap, database, 6_000 if long_mode() else 3_000)
        yield running
    finally:
        if running is not None:
            await close_stack(running)
        await asyncio.to_thread(database.close)
        if broker is not None:
            broker.stop()
        if request.session.testsfailed:
            print(f"\nfault suite logs: {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def whole(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After each scenario, whatever it did or failed to undo: fair weather, SMTP up, exactly
    one healthy process of each service, so one failure does not cascade into the next."""
    yield
    if "stack" not in request.fixturenames:
        return
    running: FaultStack = request.getfixturevalue("stack")
    await running.outside.storm([])
    await running.outside.smtp(up=True)
    await running.database.ensure_up()
    for name in SERVICES:
        while len(running.live(name)) > 1:
            await running.kill(name, sig=signal.SIGTERM, index=-1)
        if not running.live(name):
            await running.start(name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def expected(stack: FaultStack) -> dict[str, Signature]:
    """What each kind of webhook yields in an undisturbed run (the same input, no faults)."""
    hooks = mixed(stack.pool.take(2 * len(KINDS)))
    driver = Driver(lambda: stack.url("ingest"))
    try:
        await driver.run(hooks, rate=10)
    finally:
        await driver.close()
    assert all(h.accepted_at is not None for h in hooks), [h.statuses for h in hooks]
    numbers = [h.account for h in hooks]
    # Settled: handoffs delivered to every recipient, and nothing changing for 3 s.
    deadline, previous, steady_since = time.monotonic() + 120, None, time.monotonic()
    while time.monotonic() < deadline:
        found = await signatures(stack, numbers)
        if found != previous:
            previous, steady_since = found, time.monotonic()
        handed_off = all("slack" in found[h.account] for h in hooks if h.kind != "hubspot")
        if handed_off and time.monotonic() - steady_since > 3:
            break
        await asyncio.sleep(0.5)
    assert previous is not None
    kinds = expectation(previous, hooks)
    for kind in ("meeting", "lead"):
        outcome = kinds[kind]
        # The promise itself: one decision, one clock, one message per recipient and channel.
        assert outcome["decisions"] == {"decision": 1}, outcome
        assert sum(outcome["clocks"].values()) == 1, outcome
        assert set(outcome["slack"].values()) == {1} and set(outcome["email"].values()) == {1}
    print(f"\nbaseline outcome per webhook kind: {kinds}", flush=True)
    return kinds
