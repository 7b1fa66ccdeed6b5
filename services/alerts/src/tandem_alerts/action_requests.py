"""What Slack clicks and email links share: the first check, and the request to the router."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters import action_store as store
from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters.outcomes import SOURCE
from tandem_alerts.domain.handoff_buttons import facts_of_alert
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AlertRequested,
    EventType,
    HandoffActionRequested,
)
from tandem_shared.handoff_policy import HandoffFacts, precheck
from tandem_shared.topics import HANDOFF_ACTIONS
from tandem_shared.uow import UnitOfWork


async def known(
    session: AsyncSession, handoff_id: str, alert_id: str | None
) -> tuple[HandoffFacts | None, AlertRequested | None]:
    """Return what alerts knows of the handoff: the outcomes' state, else the alert's."""
    facts = await store.handoff_facts(session, handoff_id)
    alert = await store.alert_for(session, handoff_id, alert_id)
    if facts is None and alert is not None:
        facts = facts_of_alert(alert)
    return facts, alert


def refusal(
    request: HandoffActionRequested, facts: HandoffFacts | None, directory: Directory
) -> str | None:
    """Return why the request is refused at once, or None (also when alerts knows nothing)."""
    if facts is None:
        return None  # alerts never heard of the handoff: the router answers
    verdict = precheck(
        action=request.action,
        actor_id=request.actor_id,
        facts=facts,
        directory=directory,
        hand_on_to=request.hand_on_to,
        target_id=request.target_id,
    )
    return None if verdict.allowed else verdict.message


async def emit_request(
    uow: UnitOfWork, request: HandoffActionRequested, alert: AlertRequested | None, now: datetime
) -> None:
    """Publish the request (keyed by its account) with this transaction; its id is its action's."""
    account_key = alert.account_key if alert is not None else None
    if account_key is None:
        account_key = await repo.account_of_handoff(uow.session, request.handoff_id)
    envelope = Envelope.wrap(
        request,
        type=EventType.HANDOFF_ACTION_REQUESTED,
        source=SOURCE,
        subject=account_key,
        id=request.action_id,
        time=now,
    )
    uow.emit(HANDOFF_ACTIONS, envelope)
