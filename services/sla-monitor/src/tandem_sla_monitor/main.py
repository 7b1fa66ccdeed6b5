"""Composition root of the SLA monitor service: wires settings, clients and handlers."""

from __future__ import annotations

from pathlib import Path

from tandem_shared.bootstrap import build_infra, cli, run
from tandem_shared.settings import Settings
from tandem_sla_monitor.app import create_app

SCHEMA = "sla_monitor"
MIGRATIONS = Path(__file__).parent / "migrations"


async def serve(settings: Settings) -> None:
    """Build the service and run it until a stop signal."""
    infra = build_infra(settings, schema=SCHEMA)
    app = create_app(runtime_getter=lambda: infra.runtime)
    await run(infra, app)


def main() -> None:
    """Entry point of `tandem-sla-monitor`."""
    cli(service="sla-monitor", schema=SCHEMA, migrations=MIGRATIONS, serve_fn=serve)
