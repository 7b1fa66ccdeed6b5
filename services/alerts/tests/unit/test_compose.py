from __future__ import annotations

from tandem_alerts.domain.compose import email_message, slack_message, with_crm_link
from tandem_shared.handoff_policy import HandoffFacts


def test_one_alert_is_a_full_message_naming_the_assignee(make_alert, directory):
    message = slack_message([make_alert()], directory=directory)

    assert message.blocks[0]["type"] == "header"
    assert any("<@UAVA>" in str(block) for block in message.blocks)


def test_a_cover_is_told_whom_they_cover_for(make_alert, directory):
    message = slack_message([make_alert()], directory=directory, on_behalf_of="ava.ae")

    assert "covering for Ava" in str(message.blocks)


def test_several_alerts_become_one_summary(make_alert, directory):
    alerts = [make_alert(alert_id=f"al-{i}", title=f"Alert {i}") for i in range(3)]

    message = slack_message(alerts, directory=directory)

    assert message.text.startswith("3 Tandem alerts")
    assert all(f"Alert {i}" in message.text for i in range(3))


def test_a_summary_offers_acknowledge_only_to_who_may_use_it(make_alert, directory):
    alerts = [make_alert(alert_id=f"al-{i}", handoff_id=f"ho-{i}") for i in range(2)]
    acknowledged = HandoffFacts(handoff_id="ho-1", assignee_id="ava.ae", acknowledged_by="ava.ae")

    def buttons(recipient_id: str) -> list[str]:
        message = slack_message(
            alerts, directory=directory, recipient_id=recipient_id, states={"ho-1": acknowledged}
        )
        return [b["accessory"]["value"] for b in message.blocks if "accessory" in b]

    assert buttons("ava.ae") == ["ho-0"]  # ho-1 is acknowledged already
    assert buttons("ben.ae") == ["ho-0"]  # Ava's cover
    assert buttons("chloe.ae") == []  # neither assignee, cover nor manager


def test_email_is_written_for_the_recipient(make_alert, directory):
    email = email_message(make_alert(), recipient_id="ava.ae", directory=directory)

    assert email.text.startswith("Hi Ava")
    assert "Acme Corp" in email.html


def test_a_relative_crm_link_is_resolved_against_the_base_url(make_alert):
    alert = with_crm_link(make_alert(crm_url="/contacts/42"), base_url="https://crm.example/app")

    assert alert.crm_url == "https://crm.example/app/contacts/42"


def test_absolute_or_missing_links_are_kept(make_alert):
    absolute = make_alert(crm_url="https://app.hubspot.com/contacts/1")

    assert with_crm_link(absolute, base_url="https://crm.example/").crm_url == absolute.crm_url
    assert with_crm_link(make_alert(crm_url=None), base_url="https://crm.example/").crm_url is None
    assert with_crm_link(make_alert(crm_url="/x"), base_url=None).crm_url == "/x"
