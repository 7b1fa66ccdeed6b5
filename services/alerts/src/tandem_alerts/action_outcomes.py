"""The router's answers to actions, followed by alerts: the handoff's state, and the Slack message
the click came from updated in place (or an ephemeral reply to a refused click)."""

from __future__ import annotations

import structlog

from tandem_alerts.adapters import action_store as store
from tandem_alerts.domain.compose import slack_message
from tandem_alerts.domain.handoff_buttons import status_line
from tandem_shared.consumer import UnitOfWork
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType, HandoffActionOutcome

log = structlog.get_logger(__name__)

OUTCOMES = frozenset({EventType.HANDOFF_ACTION_TAKEN, EventType.HANDOFF_ACTION_REFUSED})


async def on_action_outcome(envelope: Envelope, uow: UnitOfWork, directory: Directory) -> None:
    """Record a taken action's effect; answer the Slack click it came from, if any."""
    outcome = envelope.payload(HandoffActionOutcome)
    session = uow.session
    if outcome.taken:
        await store.apply_outcome(session, outcome)
    click = await store.click_of(session, outcome.action_id)
    if click is None or click.channel_id is None:
        return  # not a Slack click (API, email), or one Slack gave no channel for
    if not outcome.taken:
        await store.queue_call(
            session,
            key=f"{outcome.action_id}:refused",
            method="chat.postEphemeral",
            arguments={
                "channel": click.channel_id,
                "user": click.slack_user_id,
                "text": outcome.message,
            },
        )
        return
    alert = await store.alert_for(session, click.handoff_id, click.alert_id)
    if alert is None or click.message_ts is None:
        log.warning("clicked message cannot be updated", handoff_id=click.handoff_id)
        return
    facts = await store.handoff_facts(session, click.handoff_id)
    message = slack_message(
        [alert],
        directory=directory,
        recipient_id=click.person_id,
        facts=facts,
        status=[status_line(outcome, directory)],
    )
    await store.queue_call(
        session,
        key=f"{outcome.action_id}:update",
        method="chat.update",
        arguments={
            "channel": click.channel_id,
            "ts": click.message_ts,
            "text": message.text,
            "blocks": message.blocks,
        },
    )
