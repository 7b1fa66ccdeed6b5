"""Traffic of `make bench-pipeline`: signed meeting requests, paced or all at once, and a
Bombora Company Surge file. Everything goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from benchmarks.pipeline_stack import BOMBORA_TOKEN, SOURCE_SECRET, account_key
from tandem_ingest.domain.signatures import sign_standard_webhook


def meeting_request(number: int) -> tuple[bytes, dict[str, str]]:
    """Return the body and Standard Webhooks headers of a meeting request from account `number`."""
    # Now, not a fixed date: the SLA clock runs from it.
    occurred_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = (
        b'{"kind":"engagement","id":"mr-' + uuid.uuid4().hex.encode() + b'",'
        b'"event":"meeting_request","email":"jane@' + account_key(number).encode() + b'",'
        b'"name":"Jane Doe","occurred_at":"' + occurred_at.encode() + b'"}'
    )
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(
            body=body, msg_id=msg_id, timestamp=timestamp, secret=SOURCE_SECRET
        ),
    }


@dataclass
class Sent:
    """When each account's meeting request was posted (monotonic), and what failed."""

    at: dict[int, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    first: float | None = None
    last_accepted: float | None = None

    @property
    def count(self) -> int:
        return len(self.at)


async def _post(session: aiohttp.ClientSession, url: str, number: int, sent: Sent) -> None:
    body, headers = meeting_request(number)
    started = time.monotonic()
    sent.at[number] = started
    if sent.first is None:
        sent.first = started
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status >= 300:
                sent.failures.append(f"{response.status}")
                sent.at.pop(number, None)
            else:
                sent.last_accepted = time.monotonic()
    except (aiohttp.ClientError, TimeoutError) as exc:
        sent.failures.append(type(exc).__name__)
        sent.at.pop(number, None)


async def burst(url: str, numbers: range, *, concurrency: int = 32, within: float = 300) -> Sent:
    """Post one meeting request per account as fast as `concurrency` connections allow."""
    sent = Sent()
    pending = iter(numbers)
    deadline = time.monotonic() + within
    timeout_cfg = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout_cfg) as session:

        async def worker() -> None:
            for number in pending:
                if time.monotonic() > deadline:
                    return
                await _post(session, url, number, sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent


async def paced(
    url: str,
    numbers: range,
    *,
    rate: float,
    seconds: float,
    max_in_flight: int = 256,
    stop: asyncio.Event | None = None,
) -> tuple[Sent, float]:
    """Post meeting requests at `rate`/s for `seconds` (open loop); return them and the rate
    actually achieved (requests that could not start on time, for lack of slots, start late)."""
    sent = Sent()
    total = min(len(numbers), int(rate * seconds))
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    timeout_cfg = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout_cfg) as session:

        async def one(number: int) -> None:
            try:
                await _post(session, url, number, sent)
            finally:
                slots.release()

        started = time.monotonic()
        # A server slower than the rate holds every slot: sending stops at the level's end
        # (plus a little), and the achieved rate says how far below the target it stayed.
        ends = started + seconds * 1.2 + 1
        for index in range(total):
            if (stop is not None and stop.is_set()) or time.monotonic() > ends:
                total = index
                break
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await asyncio.wait_for(slots.acquire(), max(ends - time.monotonic(), 0.01))
            except TimeoutError:
                total = index
                break
            task = asyncio.create_task(one(numbers[index]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elapsed = time.monotonic() - started
        await asyncio.gather(*tasks)
    return sent, total / max(elapsed, 1e-3)


# ---- Bombora ------------------------------------------------------------------------------------

BOMBORA_HEADER = (
    "Company Name,Domain,Size,Industry,Category,Topic,Composite Score,Metro Scores,"
    "Domain Origin Country\n"
)


def bombora_file(rows: int, *, topics_per_domain: int = 20, seed: int = 7) -> bytes:
    """A Company Surge file like the fixture's: `rows` rows, 20 topics per domain.

    Scores stay under the surge threshold (60): the router reads, matches and stores every row,
    but none hands off, so the meeting requests' latency shows the router's head of line, not
    an alerts queue full of intent handoffs.
    """
    rng = random.Random(seed)
    lines = [BOMBORA_HEADER]
    for index in range(rows):
        domain = f"surge{index // topics_per_domain:06d}.example.org"
        topic = f"topic {index % topics_per_domain:02d}"
        score = rng.randint(10, 59)
        lines.append(
            f",{domain},,,analytics & reporting,{topic},{score},"
            f"greater boston area[{score}]|[{score}],United States\n"
        )
    return "".join(lines).encode()


async def upload_bombora(url: str, body: bytes, *, within: float) -> tuple[int, float, str]:
    """POST the file; return (HTTP status, seconds, answer), status 0 when it did not finish."""
    started = time.monotonic()
    headers = {"content-type": "text/csv", "authorization": f"Bearer {BOMBORA_TOKEN}"}

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 256 << 10):
            yield body[start : start + (256 << 10)]

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session,
            session.post(url, data=chunks(), headers=headers) as response,
        ):
            answer = (await response.read()).decode(errors="replace")[:300]
            return response.status, time.monotonic() - started, answer
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, time.monotonic() - started, f"not finished: {type(exc).__name__}"
