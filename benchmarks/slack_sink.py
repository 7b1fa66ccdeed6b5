"""The bench's Slack: tests/integration's FakeSlack in its own process, plus a read-out endpoint.

Its own process, so a busy load generator cannot delay the receive stamps; the stamps are
time.monotonic() (CLOCK_MONOTONIC, one clock for every process on the machine), so the bench
compares them with its own send times. GET /received?after=N on the control port returns the
messages from index N on as [monotonic time, markers], the numbers of the bench accounts each
message names (a coalesced summary names several), looked up only when read so that answering
stays fast.

    python -m benchmarks.slack_sink --port P --control-port Q --token T
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from slack_server import FakeSlack, serve_local

ACCOUNT_NAME = "Benchco {:07d}"  # the bench accounts' names: what the Slack messages name
MARKER = re.compile(r"Benchco (\d{7})")


def markers_of(text: str) -> list[int]:
    """Return the bench accounts a message is about: one, or every one of a coalesced summary.

    A digest (Mia's hourly one of marketing alerts) is left out: it is not an account's alert.
    """
    if text.lstrip().startswith("Tandem digest"):
        return []
    return [int(n) for n in MARKER.findall(text)]


async def serve(port: int, control_port: int, token: str) -> None:
    fake = FakeSlack(token=token)
    fake.port = port
    await fake.start()

    async def received(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        items = [
            [r.at, markers_of(f"{r.text or ''} {r.block_text}")] for r in fake.received[after:]
        ]
        return web.json_response({"total": after + len(items), "items": items})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    control = await serve_local(
        control_port, [web.get("/received", received), web.get("/", health)]
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await control.cleanup()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slack_sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.control_port, args.token))


if __name__ == "__main__":
    main()
