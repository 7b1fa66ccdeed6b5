"""The stages of `make bench-pipeline`: burst, steady levels, head of line and the floor run.

Each one is bounded in time and reports how far it got rather than waiting on.
"""

# ruff: noqa: T201 - progress lines are the bench's output

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from benchmarks import pipeline_load as load
from benchmarks.pipeline_floor import floor_run, read_messages, relay
from benchmarks.pipeline_probe import INPUT_TOPICS, Probe, stamps
from benchmarks.pipeline_report import Drain, Latencies
from benchmarks.pipeline_stack import Stack
from tandem_shared import topics

POLL = 0.25  # seconds between progress reads
DRAIN_SECONDS = 30.0  # how long a level waits for its last messages after sending
SETTLE_SECONDS = 60.0  # how long a stage waits for the previous one's backlog first


def say(message: str) -> None:
    """Print a progress line with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _first_slack(seen: list[tuple[float, list[int]]], wanted: set[int]) -> dict[int, float]:
    """Return the first Slack message time of each wanted account."""
    first: dict[int, float] = {}
    for at, markers in seen:
        for marker in markers:
            if marker in wanted and marker not in first:
                first[marker] = at
    return first


async def burst_stage(stack: Stack, probe: Probe, numbers: range, within: float) -> dict[str, Any]:
    n, wanted = len(numbers), set(numbers)
    base_counts = await probe.counts()
    engagement_start = await probe.end_offsets(topics.ENGAGEMENT)
    base_topics = {t: await probe.topic_total(t) for t in set(INPUT_TOPICS.values())}
    drains = {name: Drain(name, n) for name in ("ingest", *INPUT_TOPICS)}
    procs = stack.services
    cpu = {name: procs[name].cpu_seconds() for name in drains}
    started = time.monotonic()
    say(f"burst: posting {n} meeting requests")
    sender = asyncio.create_task(load.burst(f"{procs['ingest'].url}/v1/webhooks/bench", numbers))
    drains["ingest"].first_input = 0.0
    deadline = started + within
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL)
        now = time.monotonic() - started
        totals = {t: await probe.topic_total(t) - base for t, base in base_topics.items()}
        counts = await probe.counts()
        slack = _first_slack(await probe.slack(), wanted)
        done = {name: counts[name] - base_counts[name] for name in counts}
        done["alerts"] = len(slack)
        # Ingest's output: webhooks answered 202 (stored, on their way to Kafka).
        accepted = sender.result().count if sender.done() else 0
        done["ingest"] = accepted
        for name, drain in drains.items():
            if drain.first_input is None and totals[INPUT_TOPICS[name]] > 0:
                drain.first_input = now
            if done[name] > drain.done:
                drain.done, drain.last_output = done[name], now
        if slack:
            drains["alerts"].last_output = max(slack.values()) - started
        if sender.done() and (last := sender.result().last_accepted) is not None:
            drains["ingest"].last_output = last - started
        if all(d.reached for name, d in drains.items() if name != "ingest") and sender.done():
            break
        if sender.done() and not sender.result().count:
            break  # nothing was accepted: nothing will come
    for name, drain in drains.items():
        drain.cpu_seconds = procs[name].cpu_seconds() - cpu[name]
    sent = await sender if sender.done() else None
    probe.outstanding |= set(sent.at if sent else numbers)
    if sent is None:
        sender.cancel()
    progress = ", ".join(f"{d.service} {d.done}/{n}" for d in drains.values())
    say(f"burst: {progress} after {time.monotonic() - started:.0f} s")
    return {
        "events": n,
        "accepted": sent.count if sent else None,
        "failures": len(sent.failures) if sent else None,
        "seconds": round(time.monotonic() - started, 1),
        "drains": drains,
        "engagement_start": engagement_start,
    }


async def settle(probe: Probe, within: float = SETTLE_SECONDS) -> int:
    """Wait (bounded) until every meeting request sent so far is on Slack; return how many are
    still not, so that a level does not silently measure an earlier stage's backlog."""
    deadline = time.monotonic() + within
    while True:
        probe.outstanding -= _first_slack(await probe.slack(), probe.outstanding).keys()
        if not probe.outstanding or time.monotonic() > deadline:
            return len(probe.outstanding)
        await asyncio.sleep(POLL)


async def latency_level(
    stack: Stack,
    probe: Probe,
    numbers: range,
    *,
    label: str,
    rate: float,
    seconds: float,
    stop: asyncio.Event | None = None,
    backlog: int | None = None,
) -> Latencies:
    if backlog is None:
        backlog = await settle(probe)
    url = f"{stack.services['ingest'].url}/v1/webhooks/bench"
    hop_topics = (topics.ENGAGEMENT, topics.ALERT_REQUESTS)
    starts = {topic: await probe.end_offsets(topic) for topic in hop_topics}
    began = time.monotonic()
    sent, achieved = await load.paced(url, numbers, rate=rate, seconds=seconds, stop=stop)
    wanted = set(sent.at)
    probe.outstanding |= wanted
    deadline = time.monotonic() + DRAIN_SECONDS
    slack = _first_slack(await probe.slack(), wanted)
    while len(slack) < len(wanted) and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
        slack = _first_slack(await probe.slack(), wanted)
    level = Latencies(label, rate, sent=len(wanted), send_rate=achieved)
    level.received_ms = [(slack[k] - sent.at[k]) * 1000 for k in slack]
    engagement, requests = [await stamps(stack.bootstrap, t, starts[t]) for t in hop_topics]
    marks = [
        sent.at,
        engagement,
        await probe.rows("router", began),
        requests,
        await probe.rows("alerts", began),
        slack,
    ]
    level.hops = hop_times(marks)
    if backlog:
        level.note = f"began behind {backlog} earlier meeting requests not yet on Slack;"
    if sent.failures:
        level.note += f" {len(sent.failures)} webhooks refused or failed ({sent.failures[0]})"
    if level.missing:
        level.note += (
            f" {level.missing} not on Slack within {DRAIN_SECONDS:.0f} s of the last send;"
        )
    say(
        f"{label}: {len(level.received_ms)}/{level.sent} on Slack, "
        f"sent at {achieved:.0f}/s, p99 {level.summary()['p99_ms']} ms"
    )
    return level


# The legs of a meeting request's way, between the marks `latency_level` takes: webhook sent,
# on Kafka, taken up by the router's transaction, its alert request on Kafka, taken up by
# alerts' transaction, on Slack. A "waits" leg is queueing; the next one processing + relay.
HOPS = ("ingest", "router waits", "router + relay", "alerts waits", "alerts delivery")


def hop_times(marks: list[dict[int, float]]) -> dict[str, list[float]]:
    """Return each meeting request's time (ms) in each leg of its way to Slack."""
    hops: dict[str, list[float]] = {name: [] for name in HOPS}
    for number in marks[0]:
        times = [mark.get(number) for mark in marks]
        for name, begin, end in zip(HOPS, times, times[1:], strict=False):
            if begin is not None and end is not None:
                hops[name].append((end - begin) * 1000)
    return hops


async def head_of_line(
    stack: Stack, probe: Probe, numbers: range, args: argparse.Namespace
) -> tuple[Latencies, dict[str, Any]]:
    rows = args.bombora_rows
    body = load.bombora_file(rows)
    backlog = await settle(probe)  # before the file: the requests then wait behind it alone
    base = await probe.routed_intents()
    # Where the requests wait, if they do: on Kafka yet (ingest's relay), decided (router)?
    marks = {
        "intents_on_kafka": (probe.topic_total, topics.INTENT),
        "meeting_requests_on_kafka": (probe.topic_total, topics.ENGAGEMENT),
    }
    before = {name: await read(arg) for name, (read, arg) in marks.items()}
    decided = (await probe.counts())["router"]
    url = f"{stack.services['ingest'].url}/v1/uploads/bombora"
    say(f"head of line: uploading {rows} Bombora rows ({len(body) >> 20} MiB)")
    upload = asyncio.create_task(load.upload_bombora(url, body, within=args.hol_seconds))
    routed_all = asyncio.Event()
    started = time.monotonic()
    info: dict[str, Any] = {"rows": rows}

    async def watch() -> None:
        # Meeting requests keep coming until the router has routed every row (or time is up).
        while not routed_all.is_set():
            try:
                routed = await probe.routed_intents() - base
            except Exception as exc:  # noqa: BLE001 - reported; the window still ends in time
                info["progress_error"] = repr(exc)
                return
            info["rows_routed"] = routed
            if routed >= rows:
                info["rows_routed_after_s"] = round(time.monotonic() - started, 1)
                routed_all.set()
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watch())
    # Wait for the router to start on the file: only then are the requests behind it.
    while not info.get("rows_routed") and time.monotonic() - started < args.hol_seconds / 2:  # noqa: ASYNC110 - polled
        await asyncio.sleep(0.2)
    level = await latency_level(
        stack,
        probe,
        numbers,
        label=f"head of line @{args.hol_rate:g}/s",
        rate=args.hol_rate,
        seconds=args.hol_seconds - (time.monotonic() - started),
        stop=routed_all,
        backlog=backlog,
    )
    watcher.cancel()
    for name, (read, arg) in marks.items():
        info[name] = await read(arg) - before[name]
    info["meeting_requests_decided"] = (await probe.counts())["router"] - decided
    status, seconds, answer = await upload if upload.done() else (0, 0.0, "still uploading")
    upload.cancel()
    info.update({"upload_status": status, "upload_seconds": round(seconds, 1), "answer": answer})
    if info.get("rows_routed", 0) < rows:
        level.note += f" the router routed {info.get('rows_routed', 0)}/{rows} rows in the window"
    return level, info


async def floor_stage(
    stack: Stack, args: argparse.Namespace, start: dict[TopicPartition, int], tmp: Path
) -> dict[str, Any]:
    if start:
        messages = await read_messages(stack.bootstrap, topics.ENGAGEMENT, start, args.burst)
        say(f"floor: {len(messages)} of the burst's envelopes through 3 bare aiokafka hops")
    else:  # no burst this run: meeting request bodies stand in for its envelopes
        messages = [(None, load.meeting_request(n)[0]) for n in range(args.burst)]
        say(f"floor: {len(messages)} meeting requests through 3 bare aiokafka hops")
    levels = sorted(
        {
            *(args.levels if "steady" in args.stages else []),
            *([args.hol_rate] if "hol" in args.stages else []),
        }
    )
    async with relay(stack.bootstrap, uuid.uuid4().hex[:8], tmp) as names:
        floor = await floor_run(
            stack.bootstrap,
            names,
            messages,
            levels=levels,
            seconds=args.seconds,
            within=args.burst_timeout,
        )
    say(f"floor: burst {floor.get('burst_events_per_s') or 0:.0f} events/s")
    return floor
