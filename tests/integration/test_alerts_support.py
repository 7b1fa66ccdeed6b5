"""Helpers of the Alerts integration tests: polling and reading a topic for matching events."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from slack_server import FakeSlack
from tandem_alerts.settings import SlackSettings, SmtpSettings
from tandem_shared.envelope import Envelope
from tandem_shared.local.embedded import free_port

SMTP_USER, SMTP_PASSWORD = "tandem", "smtp-password-for-tests"
# Recipients the test SMTP servers refuse, by address prefix, and how.
REFUSALS = {"bounce.": "550 5.1.1 No such user", "greylisted.": "451 4.7.1 Try again later"}


class RefusingHandler:
    """Base of the aiosmtpd handlers: refuses the REFUSALS addresses, accepts the others."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        refusal = next((r for p, r in REFUSALS.items() if address.startswith(p)), None)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass
class SmtpInbox(RefusingHandler):
    """What the aiosmtpd server received."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def local_transports(slack: FakeSlack, smtp_port: int, signing_secret: str) -> dict[str, Any]:
    """Alerts' Slack and SMTP settings for the local Slack server and the test SMTP server."""
    return {
        "slack": SlackSettings(
            bot_token=slack.token,
            signing_secret=signing_secret,
            base_url=slack.base_url,
            timeout_seconds=5,
        ),
        "smtp": SmtpSettings(
            host="127.0.0.1",
            port=smtp_port,
            username=SMTP_USER,
            password=SMTP_PASSWORD,
            starttls=False,
            sender="Tandem <alerts@tandem.test>",
        ),
    }


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
    """Accept SMTP_USER with SMTP_PASSWORD."""
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    # Not handled: the server itself answers 235 or 535.
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(handler: RefusingHandler, **options: Any) -> Iterator[Controller]:
    """Run an authenticating aiosmtpd server on a free local port."""
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticate, **options
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def find_events(
    bootstrap: str,
    topic: str,
    match: Callable[[Envelope, dict[str, bytes]], bool],
    *,
    count: int = 1,
    timeout: float = 20.0,
) -> list[tuple[Envelope, dict[str, bytes]]]:
    """Read `topic` from the start until `count` records match."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[tuple[Envelope, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        envelope = Envelope.from_bytes(record.value or b"")
                        headers = dict(record.headers or ())
                        if match(envelope, headers):
                            found.append((envelope, headers))
    finally:
        await consumer.stop()
    return found
