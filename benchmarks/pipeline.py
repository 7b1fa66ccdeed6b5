"""`make bench-pipeline`: the five services as processes, from signed webhooks to Slack.

Starts the embedded broker and PostgreSQL (or uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), a
local Slack Web API (benchmarks/slack_sink.py) alerts post to, and ingest, router, sla-monitor,
alerts and api-gateway with a bench config (tier 1 TAL accounts over 20 AEs reachable at any hour,
day-long SLAs, Slack pacing lifted). Then, each stage bounded in time:

- burst: N meeting requests from distinct accounts posted at once; per service, events/s from
  the first event available to it (its input topic grew) until its last output (router
  decisions, SLA clocks, Slack messages, gateway handoffs with their SLA), and CPU ms per event.
- steady: webhook-to-Slack p50/p95/p99 at each rate.
- head of line: the same for meeting requests while a Bombora file is ingested and routed.
- floor: the burst's envelopes through three bare aiokafka hops, burst rate and latencies.

Results go to .tandem/bench/pipeline-<time>.{json,md}; a stage out of time says how far it got.

    make bench-pipeline [BENCH_ARGS="--quick"]
    python -m benchmarks.pipeline [--quick] [--burst 10000] [--levels 50,200,500] [--seconds 15]
        [--bombora-rows 100000] [--hol-rate 20] [--hol-seconds 120] [--burst-timeout 600]
        [--stages burst,steady,hol]

Another tree (a worktree of an older commit) is measured by copying benchmarks/pipeline*.py and
slack_sink.py into it and running them with that tree's venv: the services, the router's seed
code and the floor's fetch wait then all come from that tree.
"""

# ruff: noqa: T201 - a terminal program: printing is its output

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.ingest import infrastructure
from benchmarks.pipeline_floor import FETCH_WAIT_MS
from benchmarks.pipeline_probe import Probe
from benchmarks.pipeline_report import UPSTREAM, Latencies, drain_summary, ratio, write_results
from benchmarks.pipeline_stack import ROOT, Stack, running_stack
from benchmarks.pipeline_stages import (
    burst_stage,
    floor_stage,
    head_of_line,
    latency_level,
    say,
)


async def measure(stack: Stack, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Run every stage; a stage that fails is reported in the notes and the others still run."""
    notes: list[str] = []
    cursor = 0

    def take(count: int) -> range:
        nonlocal cursor
        cursor += count
        return range(cursor - count, cursor)

    async def attempt(stage: str, work: Awaitable[Any]) -> Any:
        try:
            return await work
        except Exception as exc:  # noqa: BLE001 - one stage's failure is a result, not the end
            notes.append(f"{stage} failed: {exc!r}"[:500])
            say(notes[-1])
            return None

    async with Probe(stack) as probe:
        burst = hol = None
        if "burst" in args.stages:
            work = burst_stage(stack, probe, take(args.burst), args.burst_timeout)
            burst = await attempt("burst", work)
        steady = []
        for rate in args.levels if "steady" in args.stages else []:
            numbers = take(int(rate * args.seconds))
            label = f"steady @{rate:g}/s"
            level = latency_level(
                stack, probe, numbers, label=label, rate=rate, seconds=args.seconds
            )
            steady.append(await attempt(label, level))
        # The floor always runs: every figure is read against it.
        start = burst["engagement_start"] if burst else {}
        floor = await attempt("floor", floor_stage(stack, args, start, tmp)) or {}
        if "hol" in args.stages:
            hol_work = head_of_line(stack, probe, take(args.hol_total), args)
            hol = await attempt("head of line", hol_work)
    floor_rate = floor.get("burst_events_per_s")
    floor_levels = {lv["rate"]: lv for lv in floor.get("levels", [])}

    def row(level: Latencies) -> dict[str, Any]:
        summary = level.summary()
        summary["floor_p99_ms"] = (floor_levels.get(level.target_rate) or {}).get("p99_ms")
        summary["p99_of_floor"] = ratio(summary["p99_ms"], summary["floor_p99_ms"])
        return summary

    result: dict[str, Any] = {"notes": notes, "floor": floor}
    if burst:
        result["burst"] = {
            **{k: burst[k] for k in ("events", "accepted", "failures", "seconds")},
            "floor_events_per_s": floor_rate,
            "services": [
                drain_summary(d, floor_rate, burst["drains"].get(UPSTREAM.get(name, "")))
                for name, d in burst["drains"].items()
            ],
        }
    result["steady"] = [row(level) for level in steady if level is not None]
    if hol:
        result["head_of_line"] = {**row(hol[0]), "bombora": hol[1]}
    for level in [*result["steady"], result.get("head_of_line") or {}]:
        if level.get("note"):
            level["note"] = level["note"].strip(" ;")
    return result


def _tree() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True)  # noqa: S603, S607
        return done.stdout.strip()

    dirty = (
        " + uncommitted changes" if git("status", "--porcelain", "--", "shared", "services") else ""
    )
    return f"{ROOT} at {git('rev-parse', '--short', 'HEAD')}{dirty}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a minute or two")
    parser.add_argument("--burst", type=int, help="meeting requests in the burst (10000)")
    parser.add_argument("--levels", type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--seconds", type=float, help="seconds per steady level (15)")
    parser.add_argument("--bombora-rows", type=int, help="rows of the Bombora file (100000)")
    parser.add_argument("--hol-rate", type=float, default=20.0, help="meeting requests/s")
    parser.add_argument("--hol-seconds", type=float, help="bound of head of line (120)")
    parser.add_argument("--burst-timeout", type=float, help="bound of the burst (600 s)")
    parser.add_argument("--out", type=Path, default=ROOT / ".tandem" / "bench")
    parser.add_argument(
        "--stages",
        type=lambda s: set(s.split(",")),
        default={"burst", "steady", "hol"},
        help="which of burst,steady,hol to run (the floor always runs)",
    )
    args = parser.parse_args()
    quick = {
        "burst": 300,
        "levels": [50.0, 200.0],
        "seconds": 5.0,
        "bombora_rows": 5000,
        "hol_seconds": 30.0,
        "burst_timeout": 120.0,
    }
    full = {
        "burst": 10_000,
        "levels": [50.0, 200.0, 500.0],
        "seconds": 15.0,
        "bombora_rows": 100_000,
        "hol_seconds": 120.0,
        "burst_timeout": 600.0,
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.hol_total = int(args.hol_rate * args.hol_seconds) + 1
    return args


def main() -> None:
    args = parse_args()
    accounts = (
        args.burst * ("burst" in args.stages)
        + sum(int(r * args.seconds) for r in args.levels) * ("steady" in args.stages)
        + args.hol_total * ("hol" in args.stages)
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {"started": stamp, "tree": _tree()}
    with tempfile.TemporaryDirectory(prefix="tandem-bench-pipeline-") as name, ExitStack() as stack:
        tmp = Path(name)
        bootstrap, database_url = stack.enter_context(infrastructure(tmp))
        embedded = not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        result["setup"] = {
            "infra": "embedded Tansu + PostgreSQL" if embedded else "external (env)",
            "accounts": accounts,
            "cpus": os.cpu_count(),
            "load average at start": round(os.getloadavg()[0], 2),
            "alerts": "Slack Web API on 127.0.0.1, pacing lifted",
            "floor hops' fetch wait": f"{FETCH_WAIT_MS} ms, as this tree's consumers",
        }

        async def run() -> dict[str, Any]:
            # SIGTERM cancels the run like Ctrl-C: every process it started is stopped on the way
            # out, and what was measured so far is still written.
            main_task = asyncio.current_task()
            assert main_task is not None
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
            async with running_stack(tmp, bootstrap, database_url, accounts) as services:
                return await measure(services, args, tmp)

        try:
            result.update(asyncio.run(run()))
        except (KeyboardInterrupt, asyncio.CancelledError):
            result["notes"] = ["interrupted"]
        except Exception as exc:  # noqa: BLE001 - e.g. a service of a tree mid-change: reported
            result["notes"] = [f"the stack failed: {exc}"[:4000]]
            print(result["notes"][0], file=sys.stderr)
        finally:
            result["setup"]["load average at end"] = round(os.getloadavg()[0], 2)
            logs = args.out / f"pipeline-{stamp}-logs"
            logs.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                (logs / log.name).write_bytes(log.read_bytes()[-200_000:])
    json_path, md_path = write_results(result, args.out, stamp)
    print()
    print(md_path.read_text())
    print(f"results: {json_path} and {md_path}")


if __name__ == "__main__":
    main()
