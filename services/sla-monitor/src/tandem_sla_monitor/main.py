"""Composition root of the SLA monitor service: wires settings, clients and handlers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from tandem_shared import topics
from tandem_shared.availability import LiveDirectory
from tandem_shared.bootstrap import Infra, build_infra, cli, serve_built
from tandem_shared.directory import Person
from tandem_shared.envelope import utcnow
from tandem_sla_monitor.app import ApiDeps, create_app
from tandem_sla_monitor.config import load_config
from tandem_sla_monitor.domain.business_time import warm_calendars
from tandem_sla_monitor.handlers import SlaHandlers
from tandem_sla_monitor.settings import SlaMonitorSettings
from tandem_sla_monitor.timer import ClockTimer

SCHEMA = "sla_monitor"
MIGRATIONS = Path(__file__).parent / "migrations"
CONSUMED_TOPICS = (
    topics.ROUTING,
    topics.CRM,
    topics.HANDOFF_ACTIONS,
    topics.ALERT_DELIVERIES,
    topics.PEOPLE,
)


@dataclass
class SlaService:
    """The wired service: clients and workers (consumer, relay, timer) and the HTTP app."""

    infra: Infra
    handlers: SlaHandlers
    timer: ClockTimer
    app: FastAPI


def build_service(
    settings: SlaMonitorSettings, *, now: Callable[[], datetime] = utcnow
) -> SlaService:
    """Create (not start) everything the SLA monitor runs."""
    config = load_config(settings.config_dir)
    infra = build_infra(settings, schema=SCHEMA)
    live = LiveDirectory(config.directory)
    handlers = SlaHandlers(policy=config.policy, directory=config.directory, now=now, live=live)
    infra.consumer(
        group=settings.sla.consumer_group, topics=CONSUMED_TOPICS, handler=handlers.handle
    )
    infra.on_start(lambda: _warm(config.directory.people, now()))
    timer = ClockTimer(sessions=infra.sessions, directory=live, settings=settings.sla, now=now)
    infra.workers.append(timer)
    deps = ApiDeps(
        sessions=infra.sessions,
        directory=config.directory,
        now=now,
        metrics_window_days=settings.sla.metrics_window_days,
    )
    app = create_app(runtime_getter=lambda: infra.runtime, deps=deps)
    return SlaService(infra=infra, handlers=handlers, timer=timer, app=app)


async def _warm(people: Sequence[Person], today: datetime) -> None:
    warm_calendars(people, (today.year, today.year + 1))


serve = serve_built(SlaMonitorSettings, build_service)


def main() -> None:
    """Entry point of `tandem-sla-monitor`."""
    cli(
        group=topics.SLA_GROUP,
        service="sla-monitor",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        serve_fn=serve,
        settings_factory=SlaMonitorSettings,
    )
