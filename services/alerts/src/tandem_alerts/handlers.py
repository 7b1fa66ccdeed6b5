"""Consumer handlers: an alert request becomes recorded deliveries (sending happens later)."""

from __future__ import annotations

from datetime import datetime

import structlog

from tandem_alerts.adapters import repository as repo
from tandem_alerts.adapters import requests
from tandem_alerts.adapters.outcomes import publish_failed
from tandem_alerts.domain.compose import with_crm_link
from tandem_alerts.domain.plan import PlanFailure, Timing, Transports, plan_deliveries
from tandem_alerts.sending import Clock
from tandem_shared.availability import LiveDirectory
from tandem_shared.consumer import Handler, UnitOfWork
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import AlertRequested, EventType

log = structlog.get_logger(__name__)


def make_on_alert_requested(
    *,
    directory: Directory,
    transports: Transports,
    crm_base_url: str | None,
    clock: Clock,
    live: LiveDirectory | None = None,
) -> Handler:
    """Return the handler of ALERT_REQUESTS, bound to the directory and transports.

    With `live`, plans use the availability people set at run time (covers, time away).
    """

    async def on_alert_requested(envelope: Envelope, uow: UnitOfWork) -> None:
        if envelope.type != EventType.ALERT_REQUESTED:
            return
        alert = with_crm_link(envelope.payload(AlertRequested), base_url=crm_base_url)
        now = clock()
        people = await live.current(uow.session) if live is not None else directory
        plan = plan_deliveries(alert, directory=people, now=now, transports=transports)
        # Deliveries recorded before (same alert, recipient and channel) are not recorded again.
        recorded = await requests.record_request(
            uow.session, alert, plan.deliveries, request_event_id=envelope.id, now=now
        )
        for failure in plan.failures:
            await _record_failure(uow, failure, envelope=envelope, alert=alert, now=now)
        log.info(
            "alert planned",
            alert_id=alert.alert_id,
            kind=alert.kind.value,
            planned=len(plan.deliveries),
            recorded=recorded,
            deferred=sum(1 for d in plan.deliveries if d.timing is not Timing.NOW),
            unplannable=len(plan.failures),
        )

    return on_alert_requested


async def _record_failure(
    uow: UnitOfWork,
    failure: PlanFailure,
    *,
    envelope: Envelope,
    alert: AlertRequested,
    now: datetime,
) -> None:
    key = f"{failure.alert_id}:{failure.recipient_id}:unplanned"
    first = await repo.record_unplannable(
        uow.session,
        idempotency_key=key,
        alert_id=failure.alert_id,
        recipient_id=failure.recipient_id,
        error=failure.error,
    )
    if first:
        stored = repo.StoredAlert(alert, envelope.id)
        await publish_failed(
            uow, idempotency_key=key, failure=failure.as_event(failed_at=now), stored=stored
        )
