"""Email transport: one multipart (text + HTML) message through aiosmtplib."""

from __future__ import annotations

import re
from email.message import EmailMessage

import aiosmtplib

from tandem_alerts.adapters.senders import SendResult
from tandem_alerts.domain.delivery_policy import SmtpFailure
from tandem_alerts.domain.email_render import RenderedEmail
from tandem_alerts.settings import SmtpSettings


class EmailSender:
    """Sends rendered emails through the configured SMTP server."""

    def __init__(self, settings: SmtpSettings, *, password: str | None) -> None:
        if not settings.host:
            raise ValueError("EmailSender needs TANDEM_SMTP__HOST")
        self._settings = settings
        self._host = settings.host
        self._password = password

    async def send(self, address: str, email: RenderedEmail, *, message_key: str) -> SendResult:
        """Send `email` to `address`; `message_key` makes a stable Message-ID for the thread."""
        message = build_message(
            email, sender=self._settings.sender, to=address, message_key=message_key
        )
        settings = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=settings.port,
                username=settings.username,
                password=self._password,
                use_tls=settings.use_tls,
                start_tls=settings.starttls,
                cert_bundle=settings.ca_file,
                timeout=settings.timeout_seconds,
            )
        except aiosmtplib.SMTPException as exc:
            return SendResult(failure=smtp_failure(exc))
        except OSError as exc:
            return SendResult(failure=SmtpFailure(connection_failed=True, message=repr(exc)))
        return SendResult()


def build_message(email: RenderedEmail, *, sender: str, to: str, message_key: str) -> EmailMessage:
    """Return the MIME message: plain text first, HTML as the preferred alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = email.subject
    message["Message-ID"] = message_id(message_key, sender=sender)
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def message_id(message_key: str, *, sender: str) -> str:
    """Return `<key@domain>`: a resend of one delivery is the same message to mail clients.

    (email.utils.make_msgid adds the time and a random number, so it is not used.)
    """
    domain = sender.rpartition("@")[2].rstrip(">").strip() if "@" in sender else ""
    domain = domain or "tandem.local"
    # The local part must be a dot-atom: keep the key's letters, digits and a few safe marks.
    local = re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", ".", message_key.replace(":", "."))
    local = re.sub(r"\.{2,}", ".", local).strip(".") or "alert"
    return f"<{local}@{domain}>"


def smtp_failure(exc: aiosmtplib.SMTPException) -> SmtpFailure:
    """Describe an aiosmtplib error in the domain's terms."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return SmtpFailure(
            code=min(codes) if codes else None, recipients_refused=True, message=str(exc)
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return SmtpFailure(timeout=True, message=str(exc))
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return SmtpFailure(connection_failed=True, message=str(exc))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SmtpFailure(code=exc.code, message=exc.message)
    return SmtpFailure(message=str(exc))
