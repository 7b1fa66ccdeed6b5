"""Makes the Slack calls that answer handoff actions (message updates, ephemeral replies).

The consumer decides them in its transaction (rows in `slack_calls`); this worker makes each
once after the commit, woken by the consumer. Replicas share the rows (SKIP LOCKED).
"""

from __future__ import annotations

import structlog

from tandem_alerts.adapters import action_store as store
from tandem_alerts.adapters.slack_actions import SlackActionsClient, SlackCallError
from tandem_alerts.sending import Sessions
from tandem_shared.worker import PollingWorker

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5
BATCH = 20


class SlackCallWorker(PollingWorker):
    """Sends queued chat.update / chat.postEphemeral calls."""

    def __init__(
        self, *, sessions: Sessions, client: SlackActionsClient, interval: float = 1.0
    ) -> None:
        super().__init__(interval=interval, stall_seconds=None)
        self._sessions = sessions
        self._client = client

    def more_waiting(self, done: int) -> bool:
        return done >= BATCH

    async def tick(self) -> int:
        """Make a batch of pending calls; return how many were made."""
        async with self._sessions() as session, session.begin():
            calls = await store.claim_calls(session, limit=BATCH)
            for call in calls:
                try:
                    await self._client.call(call.method, call.arguments)
                except SlackCallError as exc:
                    gave_up = exc.permanent or call.attempts + 1 >= MAX_ATTEMPTS
                    log.warning(
                        "slack call failed", method=call.method, error=str(exc), gave_up=gave_up
                    )
                    status = "failed" if gave_up else "pending"
                    await store.finish_call(session, call, status=status, error=str(exc))
                else:
                    await store.finish_call(session, call, status="sent", error=None)
        return len(calls)
