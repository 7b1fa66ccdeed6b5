"""`make up`, a burst of meeting requests, Ctrl-C while they are in flight, `make up` again,
then `make down`.

`make up` starts five healthy services within its bound; `make down` leaves no process behind.

The embedded broker keeps everything in memory: the restart starts on an empty broker. What the
services had published and not yet had consumed lives only in their retained outbox rows, and
the relays must republish it. Every webhook that got a 202 must end with exactly one routing
decision and each of its alerts sent once per recipient and channel.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from tandem_ingest.domain.signatures import sign_standard_webhook
from tandem_shared.local.embedded import free_port_block
from tandem_shared.topics import (
    ALERT_REQUESTS,
    ALERTS_GROUP,
    DATA_TOPICS,
    ENGAGEMENT,
    ROUTER_GROUP,
)

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "tandem-local")
WEBHOOKS = 240
LOST = "broker lost published events"
ALERT_LINE = re.compile(r"ALERT for .*? alert_id=(\S+) .*? recipient=(\S+)")
HEALTHY = re.compile(r"all five services are healthy \(([0-9.]+) s after launch\)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and " Z " in stat.read_text())


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


@dataclass
class LocalStack:
    """One `tandem-local up` process, its output read as it comes (so its pipe never fills)."""

    workdir: Path
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def up(self, timeout: float = 180) -> None:
        self.lines = []
        self.process = subprocess.Popen(
            [CLI, "up"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        healthy = threading.Event()
        threading.Thread(target=self._read, args=(self.process, healthy), daemon=True).start()
        if not healthy.wait(timeout):
            raise AssertionError("stack not healthy:\n" + "".join(self.lines[-40:]))

    def _read(self, process: subprocess.Popen[str], healthy: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            if "all five services are healthy" in line:
                healthy.set()

    def interrupt(self) -> int:
        """Ctrl-C, as in the terminal `make up` runs in; return the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        return "".join(self.lines)

    def processes(self) -> list[int]:
        """The pids of `up`, the broker, the five services and PostgreSQL's postmaster."""
        run = json.loads((self.workdir / ".tandem/run.json").read_text())
        pgdata = Path(run["pgdata"])
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        return [run["up"], run["broker"], *run["services"].values(), postmaster]

    def down(self) -> None:
        """`make down` from another terminal: `up` returns and nothing of the stack is left."""
        assert self.process is not None
        pids = self.processes()
        assert all(_alive(p) for p in pids), pids
        down = subprocess.run(
            [CLI, "down"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        assert [p for p in pids if _alive(p)] == []


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    # Outside pytest's base temp: the embedded PostgreSQL's own user must reach the folder.
    workdir = Path(tempfile.mkdtemp(prefix="tandem-restart-"))
    shutil.copytree(ROOT / "config", workdir / "config")
    # Room for every request: a full pool would escalate them instead of deciding who owns them.
    people = workdir / "config/example/people.yaml"
    people.write_text(people.read_text().replace("capacity: 25", "capacity: 100000"))
    base = free_port_block(6)  # five services, then the broker
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") and not k.startswith("TANDEM_")
    }
    env.update(
        {
            "TANDEM_LOCAL_HTTP_BASE": str(base),
            "TANDEM_LOCAL_BROKER_PORT": str(base + 5),
            "TANDEM_OUTBOX__BROKER_CHECK_SECONDS": "1",
            # A loaded CI machine (or laptop) starts slower than a quiet one.
            "TANDEM_LOCAL_START_TIMEOUT": "150",
        }
    )
    local = LocalStack(workdir, env)
    yield local
    if local.process is not None and local.process.poll() is None:
        local.interrupt()
    shutil.rmtree(workdir, ignore_errors=True)


def meeting_request(n: int, secret: str) -> tuple[str, bytes, dict[str, str]]:
    """A signed meeting request (generic source `demo`) from an account of its own."""
    account = f"restart{n:04d}-{uuid.uuid4().hex[:6]}.com"
    body = json.dumps(
        {
            "kind": "engagement",
            "id": f"restart-{uuid.uuid4().hex}",
            "event": "meeting_request",
            "email": f"buyer@{account}",
            "name": f"Buyer {n}",
            "source": "demo",
            "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    ).encode()
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard_webhook(
            body=body, msg_id=msg_id, timestamp=stamp, secret=secret
        ),
    }
    return account, body, headers


async def post_all(url: str, secret: str, count: int) -> list[str]:
    """Post `count` meeting requests, 32 at a time; return the accounts of those answered 202."""
    accepted: list[str] = []
    slots = asyncio.Semaphore(32)
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(n: int) -> None:
            account, body, headers = meeting_request(n, secret)
            async with slots:
                response = await client.post(url, content=body, headers=headers)
            if response.status_code == 202:
                accepted.append(account)

        await asyncio.gather(*(post(n) for n in range(count)))
    return accepted


async def connect(workdir: Path) -> asyncpg.Connection:
    """The running stack's database, over the socket its postmaster.pid names."""
    run = json.loads((workdir / ".tandem/run.json").read_text())
    pid_file = (Path(run["pgdata"]) / "postmaster.pid").read_text().splitlines()
    port, socket_dir = pid_file[3].strip(), pid_file[4].strip()
    return await asyncpg.connect(
        host=socket_dir, port=int(port), user="postgres", database="tandem"
    )


async def decided(db: asyncpg.Connection, accounts: list[str]) -> int:
    return int(
        await db.fetchval(
            "SELECT count(DISTINCT account_key) FROM router.decisions WHERE account_key = ANY($1)",
            accounts,
        )
    )


async def idle(db: asyncpg.Connection, bootstrap: str) -> bool:
    """Nothing left to publish, and the router and alerts consumed all their topics hold."""
    for schema in ("ingest", "router", "sla_monitor", "alerts", "api_gateway"):
        if await db.fetchval(f"SELECT count(*) FROM {schema}.outbox"):
            return False
    for group, topic in ((ROUTER_GROUP, ENGAGEMENT), (ALERTS_GROUP, ALERT_REQUESTS)):
        # A member that never subscribes does not join the group: it only reads its offsets.
        # (The admin client's OffsetFetch does not decode the embedded broker's answer.)
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        await reader.start()
        try:
            count = next(t.partitions for t in DATA_TOPICS if t.name == topic)
            partitions = [TopicPartition(topic, p) for p in range(count)]
            for tp, end in (await reader.end_offsets(partitions)).items():
                if end > (await reader.committed(tp) or 0):
                    return False
        finally:
            await reader.stop()
    return True


async def test_meeting_requests_in_flight_at_ctrl_c_are_routed_and_alerted_once_after_up(
    stack: LocalStack,
) -> None:
    started = time.monotonic()
    base = int(stack.env["TANDEM_LOCAL_HTTP_BASE"])
    bootstrap = f"127.0.0.1:{base + 5}"
    sources = yaml.safe_load((ROOT / "config/example/sources.yaml").read_text())
    [secret] = next(s for s in sources["sources"] if s["name"] == "demo")["dev_secrets"]

    stack.up()
    timings = {"first up": time.monotonic() - started}
    [banner] = [m for line in stack.lines if (m := HEALTHY.search(line))]
    assert float(banner.group(1)) < 30, banner.group(0)  # make up's start-up bound
    statuses = {o: _status(f"http://127.0.0.1:{base + o}/healthz") for o in range(5)}
    assert set(statuses.values()) == {200}, statuses
    accepted = await post_all(f"http://127.0.0.1:{base + 1}/v1/webhooks/demo", secret, WEBHOOKS)
    db = await connect(stack.workdir)
    try:
        routed_at_stop = await decided(db, accepted)
    finally:
        await db.close()
    timings["posted"] = time.monotonic() - started
    assert stack.interrupt() == 0
    timings["stopped"] = time.monotonic() - started
    assert len(accepted) == WEBHOOKS
    # The stop landed while the pipeline was busy: some requests were not routed yet.
    assert routed_at_stop < len(accepted), routed_at_stop
    first_run = stack.output()

    stack.up()
    timings["second up"] = time.monotonic() - started
    db = await connect(stack.workdir)
    try:
        deadline = time.monotonic() + 120
        while await decided(db, accepted) < len(accepted) or not await idle(db, bootstrap):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{await decided(db, accepted)} of {len(accepted)} routed, "
                    f"at stop {routed_at_stop}:\n{stack.output()[-6000:]}"
                )
            await asyncio.sleep(0.5)
        timings["all routed"] = time.monotonic() - started
        decisions = await db.fetch(
            "SELECT account_key, count(*) AS n FROM router.decisions"
            " WHERE account_key = ANY($1) GROUP BY account_key",
            accepted,
        )
        alerts = await db.fetch(
            "SELECT a.account_key, a.alert_id, a.payload->>'kind' AS kind,"
            " d.recipient_id, d.channel, d.status,"
            " (SELECT count(*) FROM alerts.delivery_attempts t"
            "   WHERE t.delivery_id = d.id AND t.outcome = 'sent') AS sent"
            " FROM alerts.alerts a JOIN alerts.deliveries d USING (alert_id)"
            " WHERE a.account_key = ANY($1)",
            accepted,
        )
    finally:
        await db.close()
    stack.down()
    second_run = stack.output()

    # The fresh broker lacked what the first one held: the relays said so and republished it.
    assert LOST in second_run, second_run[-3000:]
    assert {row["account_key"]: row["n"] for row in decisions} == dict.fromkeys(accepted, 1)
    # Each request: its assignee told once, marketing told once.
    kinds: dict[str, Counter[str]] = {}
    for row in {(r["account_key"], r["alert_id"], r["kind"]) for r in alerts}:
        kinds.setdefault(row[0], Counter())[row[2]] += 1
    assert kinds == {a: Counter({"handoff": 1, "marketing_fyi": 1}) for a in accepted}
    per_recipient = Counter((r["alert_id"], r["recipient_id"], r["channel"]) for r in alerts)
    assert max(per_recipient.values()) == 1
    assert all(r["sent"] <= 1 for r in alerts), [dict(r) for r in alerts if r["sent"] > 1]
    # The log sink is where these alerts went: each (alert, recipient) appears once over both runs.
    sent_lines = Counter(m.groups() for m in ALERT_LINE.finditer(first_run + second_run))
    assert sent_lines and max(sent_lines.values()) == 1, sent_lines.most_common(3)
    phases = ", ".join(f"{name} {at:.1f} s" for name, at in timings.items())
    print(f"restart test: {phases}; {routed_at_stop} of {len(accepted)} routed at the stop")
