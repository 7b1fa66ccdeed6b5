"""The Message-ID of an alert email is the delivery's: a resend is the same message."""

from __future__ import annotations

from tandem_alerts.adapters.email import build_message, message_id
from tandem_alerts.domain.email_render import RenderedEmail

RENDERED = RenderedEmail(subject="s", text="t", html="<p>t</p>")


def test_a_resend_keeps_its_message_id():
    first, again = (
        build_message(RENDERED, sender="a@tandem.example", to="b@x.com", message_key="k:1:email")
        for _ in range(2)
    )
    assert first["Message-ID"] == again["Message-ID"] == "<k.1.email@tandem.example>"


def test_different_deliveries_have_different_message_ids():
    sender = "Tandem <alerts@tandem.example>"
    assert message_id("a1:ava.ae:email", sender=sender) != message_id(
        "a2:ava.ae:email", sender=sender
    )


def test_the_message_id_is_a_valid_addr_spec():
    key = "alert 1:ava.ae:email<>@"
    assert message_id(key, sender="Tandem <alerts@tandem.example>") == (
        "<alert.1.ava.ae.email@tandem.example>"
    )
    assert message_id("x", sender="no-domain") == "<x@tandem.local>"
