"""The gateway's app for `make bench-reads`, served in a process of its own.

The bench's readers and the app must not share an event loop (16 readers in the same loop as
the app measure the bench, not the gateway): `benchmarks.reads` starts this module with the
seeded database and the bench's clock, and reads through HTTP. It serves the way the gateway
does (tandem_shared.service.serve: uvicorn with httptools on uvloop, the GC tuned as
tandem_shared.bootstrap tunes it), without the consumers.

    python -m benchmarks.reads_server --url URL --now 2026-01-01T00:00:00+00:00 --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from tandem_api_gateway.api.context import Gateway
from tandem_api_gateway.app import create_app
from tandem_api_gateway.main import SCHEMA
from tandem_api_gateway.settings import GatewaySettings
from tandem_shared.db import create_engine, session_factory
from tandem_shared.service import serve, tune_gc, use_uvloop


def settings_for(url: str) -> GatewaySettings:
    """Gateway settings for the bench: its database, a pool for 16 readers, no rate limit."""
    return GatewaySettings(
        env="test",
        database={"url": url, "pool_size": 20},
        gateway={"rate_limit_per_second": 1e9, "rate_limit_burst": 10**9},
    )


async def run(url: str, now: datetime, port: int) -> None:
    """Serve the gateway's read API on 127.0.0.1:`port` until SIGTERM."""
    settings = settings_for(url)
    engine = create_engine(settings.database, schema=SCHEMA)
    app = create_app(
        gateway=Gateway(settings=settings, sessions=session_factory(engine), clock=lambda: now),
        runtime_getter=lambda: None,
    )
    tune_gc()  # as the service does once built: a full collection of start-up objects took 0.3 s
    await serve(app, host="127.0.0.1", port=port, workers=[], on_stop=engine.dispose)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reads_server", description=__doc__)
    parser.add_argument("--url", required=True, help="the seeded database")
    parser.add_argument("--now", required=True, type=datetime.fromisoformat, help="the clock")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    use_uvloop()
    asyncio.run(run(args.url, args.now, args.port))


if __name__ == "__main__":
    main()
