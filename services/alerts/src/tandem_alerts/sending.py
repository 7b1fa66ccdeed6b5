"""What the delivery and digest workers share: the transports, the clock and the retry policy."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tandem_alerts.adapters.email import EmailSender
from tandem_alerts.adapters.log_sink import LogSink
from tandem_alerts.adapters.slack import SlackSender
from tandem_alerts.domain.action_links import LinkSigner
from tandem_alerts.settings import AlertsOptions
from tandem_shared.availability import LiveDirectory
from tandem_shared.directory import Directory
from tandem_shared.worker import PollingWorker

Clock = Callable[[], datetime]
Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Senders:
    """The transports; Slack and email are None when not configured."""

    slack: SlackSender | None
    email: EmailSender | None
    log: LogSink
    links: LinkSigner | None = None  # signs the one-click action links of emails


class SendingWorker(PollingWorker):
    """A polling worker that sends alerts, with the collaborators and retry policy it needs."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        directory: Directory,
        senders: Senders,
        options: AlertsOptions,
        clock: Clock,
        live: LiveDirectory | None = None,
    ) -> None:
        self._sessions = sessions
        self._directory = directory
        self._live = live
        self._senders = senders
        self._options = options
        self._clock = clock
        self._retry = options.retry_policy()
        interval, stall_seconds = self.polling(options)
        super().__init__(interval=interval, stall_seconds=stall_seconds)

    async def refresh_people(self, session: AsyncSession) -> None:
        """Take the directory with run-time availability (covers, hours) for this round.

        Once per round, not per send: a version check, and the rows only after a change.
        """
        if self._live is not None:
            self._directory = await self._live.current(session)

    @staticmethod
    @abstractmethod
    def polling(options: AlertsOptions) -> tuple[float, float]:
        """Return the seconds between rounds and the seconds without one that mean stalled."""
