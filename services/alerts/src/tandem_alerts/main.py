"""Composition root of the Alerts service: wires settings, clients and handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import structlog
from fastapi import FastAPI

from tandem_alerts.action_calls import SlackCallWorker
from tandem_alerts.action_outcomes import OUTCOMES, on_action_outcome
from tandem_alerts.action_pages import action_pages_router
from tandem_alerts.adapters.email import EmailSender
from tandem_alerts.adapters.log_sink import LogSink
from tandem_alerts.adapters.slack import SlackSender
from tandem_alerts.adapters.slack_actions import SlackActionsClient
from tandem_alerts.app import create_app
from tandem_alerts.delivery import DeliveryWorker
from tandem_alerts.digests import DigestWorker
from tandem_alerts.domain.action_links import LinkSigner
from tandem_alerts.handlers import make_on_alert_requested
from tandem_alerts.interactions import interactions_router
from tandem_alerts.sending import Clock, Senders, SendingWorker
from tandem_alerts.settings import AlertsSettings
from tandem_alerts.slash_commands import slash_commands_router
from tandem_shared import topics
from tandem_shared.availability import LiveDirectory, record_change
from tandem_shared.bootstrap import Infra, build_infra, cli, serve_built
from tandem_shared.consumer import UnitOfWork
from tandem_shared.directory import load_directory
from tandem_shared.envelope import Envelope, utcnow
from tandem_shared.events import AvailabilityChanged, EventType
from tandem_shared.topics import ALERT_REQUESTS, ALERTS_GROUP, HANDOFF_ACTIONS, PEOPLE

SCHEMA = "alerts"
MIGRATIONS = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)

_Sender = TypeVar("_Sender", bound=SendingWorker)


@dataclass
class AlertsService:
    """The wired service: its clients and loops (in `infra.workers`) and its HTTP app."""

    infra: Infra
    app: FastAPI
    delivery: DeliveryWorker
    digests: DigestWorker


def build_service(
    settings: AlertsSettings, *, clock: Clock = utcnow, group: str = ALERTS_GROUP
) -> AlertsService:
    """Create (not start) the service from its settings."""
    settings.check_secrets()
    infra = build_infra(settings, schema=SCHEMA)
    directory = load_directory(settings.config_dir / "people.yaml")
    options = settings.alerts
    transports = settings.transports
    senders = build_senders(settings)
    live = LiveDirectory(directory)

    def sender(kind: type[_Sender]) -> _Sender:
        """A sending worker with the shared transports and run-time availability."""
        return kind(
            sessions=infra.sessions,
            directory=directory,
            senders=senders,
            options=options,
            clock=clock,
            live=live,
        )

    delivery = sender(DeliveryWorker)
    on_alert_requested = make_on_alert_requested(
        directory=directory,
        live=live,
        transports=transports,
        crm_base_url=options.crm_base_url,
        clock=clock,
    )
    slack_actions = build_slack_actions(settings)
    calls = (
        SlackCallWorker(sessions=infra.sessions, client=slack_actions) if slack_actions else None
    )

    async def handle(envelope: Envelope, uow: UnitOfWork) -> None:
        if envelope.type in OUTCOMES:
            await on_action_outcome(envelope, uow, await live.current(uow.session))
        elif envelope.type == EventType.AVAILABILITY_CHANGED:
            # Covers and quiet hours of the next plans follow the change.
            await record_change(uow.session, envelope.payload(AvailabilityChanged))
        else:
            await on_alert_requested(envelope, uow)

    def after_commit() -> None:
        # Planned deliveries and message updates leave as soon as they commit.
        delivery.wake()
        if calls is not None:
            calls.wake()

    infra.consumer(
        group=group,
        topics=[ALERT_REQUESTS, HANDOFF_ACTIONS, PEOPLE],
        handler=handle,
        after_commit=after_commit,
    )
    digests = sender(DigestWorker)
    if senders.slack is not None:
        infra.on_start(_nothing, stop=senders.slack.aclose)
    infra.workers += [delivery, digests] + ([calls] if calls is not None else [])
    interactions = interactions_router(
        signing_secret=settings.slack_signing_secret(),
        directory=directory,
        sessions=infra.sessions,
        clock=clock,
        slack=slack_actions,
    )
    commands = slash_commands_router(
        signing_secret=settings.slack_signing_secret(),
        directory=directory,
        sessions=infra.sessions,
        clock=clock,
    )
    routers = [interactions, commands]
    if senders.links is not None:
        routers.append(
            action_pages_router(
                links=senders.links, directory=directory, sessions=infra.sessions, clock=clock
            )
        )
    app = create_app(runtime_getter=lambda: infra.runtime, routers=tuple(routers))
    log.info(
        "alerts transports",
        slack=transports.slack,
        email=transports.email,
        log_sink=not (transports.slack and transports.email),
    )
    return AlertsService(infra, app, delivery, digests)


async def _nothing() -> None:
    """No start-up work: the Slack session opens at the first post, and closes on the way out."""


def build_slack_actions(settings: AlertsSettings) -> SlackActionsClient | None:
    """Return the client of chat.update / chat.postEphemeral / views.open, when Slack is on."""
    if not settings.transports.slack:
        return None
    return SlackActionsClient(
        token=settings.slack_token(),
        base_url=settings.slack.base_url,
        timeout=settings.slack.timeout_seconds,
    )


def build_senders(settings: AlertsSettings) -> Senders:
    """Create the configured transports; the log sink is always there."""
    slack = None
    if settings.transports.slack:
        slack = SlackSender(
            token=settings.slack_token(),
            base_url=settings.slack.base_url,
            timeout=settings.slack.timeout_seconds,
        )
    email = None
    if settings.transports.email:
        email = EmailSender(settings.smtp, password=settings.smtp_password())
    return Senders(slack=slack, email=email, log=LogSink(), links=build_links(settings))


def build_links(settings: AlertsSettings) -> LinkSigner | None:
    """Return the signer of email action links, when TANDEM_LINKS__* configure them."""
    secret, base_url = settings.link_secret(), settings.links.base_url
    if secret is None or base_url is None:
        return None
    max_age = timedelta(hours=settings.links.max_age_hours)
    return LinkSigner(secret=secret.encode(), base_url=base_url, max_age=max_age)


serve = serve_built(AlertsSettings, build_service)


def main() -> None:
    """Entry point of `tandem-alerts`."""
    cli(
        group=topics.ALERTS_GROUP,
        service="alerts",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        serve_fn=serve,
        settings_factory=AlertsSettings,
    )
