"""The router's answers to actions, followed by alerts: the handoff's state, every Slack message
about the handoff updated in place (the outcome, and the controls each recipient still has), or
an ephemeral reply to a refused click."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters import action_store as store
from tandem_alerts.adapters.slack_messages import PostedMessage, handoff_messages
from tandem_alerts.domain.compose import slack_message
from tandem_alerts.domain.handoff_buttons import status_line
from tandem_shared.consumer import UnitOfWork
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType, HandoffActionOutcome

log = structlog.get_logger(__name__)

OUTCOMES = frozenset({EventType.HANDOFF_ACTION_TAKEN, EventType.HANDOFF_ACTION_REFUSED})


async def on_action_outcome(envelope: Envelope, uow: UnitOfWork, directory: Directory) -> None:
    """Record a taken action's effect and update the handoff's messages; answer a refused click."""
    outcome = envelope.payload(HandoffActionOutcome)
    session = uow.session
    click = await store.click_of(session, outcome.action_id)
    if not outcome.taken:
        if click is not None and click.channel_id is not None:
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
    await store.apply_outcome(session, outcome)
    posted = await handoff_messages(session, outcome.handoff_id)
    if click is not None and all(m.ts != click.message_ts for m in posted):
        # A clicked message alerts has no record of (sent before messages were recorded).
        clicked = await _clicked_message(session, click)
        if clicked is not None:
            posted.append(clicked)
    await _update_messages(session, outcome, posted, directory)


async def _clicked_message(session: AsyncSession, click: store.ClickRow) -> PostedMessage | None:
    if click.message_ts is None or click.channel_id is None:
        return None
    alert = await store.alert_for(session, click.handoff_id, click.alert_id)
    if alert is None:
        log.warning("clicked message cannot be updated", handoff_id=click.handoff_id)
        return None
    return PostedMessage(click.channel_id, click.message_ts, click.person_id, None, (alert,))


async def _update_messages(
    session: AsyncSession,
    outcome: HandoffActionOutcome,
    posted: list[PostedMessage],
    directory: Directory,
) -> None:
    """Queue one chat.update per message: re-rendered for its recipient as things stand now."""
    if not posted:
        return
    handoffs = {a.handoff_id for m in posted for a in m.alerts if a.handoff_id}
    states = await store.handoff_states_of(session, handoffs)
    status = [status_line(outcome, directory)]
    for message in posted:
        alone = len(message.alerts) == 1
        rendered = slack_message(
            message.alerts,
            directory=directory,
            recipient_id=message.recipient_id,
            on_behalf_of=message.on_behalf_of,
            states=states,
            status=status if alone else (),
        )
        await store.queue_call(
            session,
            key=f"{outcome.action_id}:update:{message.channel}:{message.ts}",
            method="chat.update",
            arguments={
                "channel": message.channel,
                "ts": message.ts,
                "text": rendered.text,
                "blocks": rendered.blocks,
            },
        )
