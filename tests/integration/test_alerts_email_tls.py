"""The email transport against a real SMTP server (aiosmtpd): STARTTLS, TLS, auth, refusals."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from test_alerts_support import SMTP_PASSWORD, SMTP_USER, RefusingHandler, smtp_server

from tandem_alerts.adapters.email import EmailSender
from tandem_alerts.adapters.senders import judge
from tandem_alerts.domain.delivery_policy import Action, FailureKind, RetryPolicy
from tandem_alerts.domain.email_render import RenderedEmail
from tandem_alerts.settings import SmtpSettings

pytestmark = pytest.mark.integration

EMAIL = RenderedEmail(
    subject="Acme requested a meeting", text="Plain part", html="<p>HTML part</p>"
)


@dataclass
class Mailbox(RefusingHandler):
    """Accepts mail, remembering whether it came over TLS."""

    received: list[tuple[str, bool]] = field(default_factory=list)  # (to, over TLS)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # STARTTLS sets session.ssl; implicit TLS shows only on the transport.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        for to in envelope.rcpt_tos:
            self.received.append((to, tls))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, which the client trusts as its CA file."""
    return _self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1")


def _self_signed(folder: Path, ip: str) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={ip}"),
            *("-addext", f"subjectAltName=IP:{ip}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@contextmanager
def _server(**options: Any) -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    with smtp_server(mailbox, auth_required=True, **options) as controller:
        yield controller, mailbox


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Controller, Mailbox]]:
    """A submission server (587 style) that requires STARTTLS before anything."""
    with _server(tls_context=_server_context(certificate), require_starttls=True) as server:
        yield server


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Controller, Mailbox]]:
    """A submissions server (465 style): TLS from the first byte."""
    # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is all TLS.
    with _server(ssl_context=_server_context(certificate), auth_require_tls=False) as server:
        yield server


def _sender(
    controller: Controller, ca: Path, *, password: str = SMTP_PASSWORD, **tls: bool
) -> EmailSender:
    settings = SmtpSettings(
        host="127.0.0.1",
        port=controller.port,
        username=SMTP_USER,
        ca_file=str(ca),
        sender="Tandem <alerts@tandem.test>",
        timeout_seconds=5,
        **tls,
    )
    return EmailSender(settings, password=password)


async def test_starttls_with_authentication_delivers(
    starttls_server: tuple[Controller, Mailbox], certificate: tuple[Path, Path]
) -> None:
    controller, mailbox = starttls_server
    sender = _sender(controller, certificate[0], starttls=True)

    result = await sender.send("ava@tandem.example", EMAIL, message_key="al-1:ava.ae:email")

    assert result.ok, result.failure
    assert mailbox.received == [("ava@tandem.example", True)]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_with_authentication_delivers(
    tls_server: tuple[Controller, Mailbox], certificate: tuple[Path, Path]
) -> None:
    controller, mailbox = tls_server
    sender = _sender(controller, certificate[0], starttls=False, use_tls=True)

    result = await sender.send("ava@tandem.example", EMAIL, message_key="al-2:ava.ae:email")

    assert result.ok, result.failure
    assert mailbox.received == [("ava@tandem.example", True)]


async def test_a_certificate_the_client_does_not_trust_is_refused(
    starttls_server: tuple[Controller, Mailbox], tmp_path: Path
) -> None:
    controller, mailbox = starttls_server
    other, _ = _self_signed(tmp_path, "127.0.0.1")  # same name, another key: not the server's

    result = await _sender(controller, other, starttls=True).send(
        "ava@tandem.example", EMAIL, message_key="al-3:ava.ae:email"
    )

    assert not result.ok and mailbox.received == []


@pytest.mark.parametrize(
    ("address", "password", "kind", "action"),
    [
        (
            "bounce.ava@tandem.example",
            SMTP_PASSWORD,
            FailureKind.PERMANENT,
            Action.GIVE_UP_PERMANENT,
        ),
        ("ava@tandem.example", "wrong-password", FailureKind.PERMANENT, Action.GIVE_UP_PERMANENT),
        ("greylisted.ava@tandem.example", SMTP_PASSWORD, FailureKind.TRANSIENT, Action.RETRY),
    ],
)
async def test_refusals_are_judged_permanent_or_transient(
    starttls_server: tuple[Controller, Mailbox],
    certificate: tuple[Path, Path],
    address: str,
    password: str,
    kind: FailureKind,
    action: Action,
) -> None:
    controller, mailbox = starttls_server
    sender = _sender(controller, certificate[0], password=password, starttls=True)

    result = await sender.send(address, EMAIL, message_key="al-4:x:email")

    assert result.failure is not None and mailbox.received == []
    got_kind, decision = judge(result.failure, attempts=1, policy=RetryPolicy())
    assert (got_kind, decision.action) == (kind, action), decision.reason
