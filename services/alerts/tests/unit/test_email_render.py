"""Email rendering: subject, text and autoescaped HTML for an alert and a digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tandem_alerts.domain.digest import build_digest
from tandem_alerts.domain.email_render import (
    render_alert_email,
    render_digest_email,
    template_environment,
    web_url,
)


def test_alert_email_has_subject_text_and_html_with_the_handoff(make_alert, ava, make_person):
    email = render_alert_email(make_alert(), recipient=ava, assignee=ava)

    assert email.subject == "Acme Corp requested a meeting · Acme Corp (acme.com)"
    for part in (email.text, email.html):
        assert "Hi Ava" in part
        assert "Acme Corp (acme.com)" in part
        assert "Tier 1" in part
        assert "Meeting request" in part
        assert "Account owner of a Tier 1 account in na-east" in part
        assert "Research summary" in part
        assert "Engagement history" in part
        assert "Content consumed" in part
        assert "Intent signals" in part
        assert "Suggested approach" in part
        assert "https://app.hubspot.com/contacts/1/company/42" in part
    # The deadline (18:00 UTC) is shown in Ava's New York time.
    assert "Tue 14 May 2024, 14:00 EDT" in email.text
    assert "Sales Alignment (bombora), score 78, surging" in email.text


def test_html_is_autoescaped_and_text_is_not(make_alert):
    alert = make_alert(summary="<script>alert(1)</script> & more", account_name="R&D")

    email = render_alert_email(alert)

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in email.html
    assert "<script>alert(1)</script> & more" in email.text


def test_subject_is_one_line_and_urgent_is_flagged(make_alert):
    email = render_alert_email(make_alert(title="Breach\r\nBcc: evil@x.com", urgency="urgent"))
    assert "\n" not in email.subject and "\r" not in email.subject
    assert email.subject.startswith("[Urgent] Breach Bcc: evil@x.com")


def test_long_subject_is_cut(make_alert):
    assert len(render_alert_email(make_alert(title="x" * 500)).subject) <= 200


def test_only_web_links_are_rendered(make_alert):
    email = render_alert_email(make_alert(crm_url="javascript:alert(1)"))
    assert "javascript:" not in email.html
    assert web_url("HTTPS://crm.example/x") == "HTTPS://crm.example/x"
    assert web_url("mailto:a@b.c") is None


def test_cover_email_says_whom_it_covers_for(make_alert, ava):
    email = render_alert_email(make_alert(), covering_for=ava)
    assert "You are covering for Ava" in email.text
    assert "You are covering for Ava" in email.html


def test_long_lists_point_at_the_crm(make_alert):
    alert = make_alert()
    context = alert.context.model_copy(update={"content_consumed": [f"doc {i}" for i in range(30)]})
    email = render_alert_email(alert.model_copy(update={"context": context}))
    assert "doc 19" in email.text and "doc 20" not in email.text
    assert "...and 10 more in the CRM" in email.text


def test_digest_email_lists_accounts_newest_first(make_alert, ava):
    t0 = datetime(2024, 7, 1, 13, 0, tzinfo=UTC)
    digest = build_digest(
        "ava.ae",
        [
            make_alert(alert_id="1", title="Old Acme news", requested_at=t0),
            make_alert(
                alert_id="2",
                title="Beta <surge>",
                account_key="beta.io",
                account_name="Beta",
                requested_at=t0 + timedelta(hours=1),
            ),
        ],
        generated_at=t0 + timedelta(hours=2),
    )

    email = render_digest_email(digest, recipient=ava)

    assert email.subject == "Your Tandem digest: 2 alerts"
    assert email.text.index("Beta") < email.text.index("Acme Corp")
    assert "Mon 01 Jul 2024, 09:00 EDT: Old Acme news" in email.text
    assert "Beta &lt;surge&gt;" in email.html


def test_environment_is_built_lazily_and_reused():
    assert template_environment() is template_environment()
    assert template_environment().autoescape("x.html") is True
    assert template_environment().autoescape("x.txt") is False
