from __future__ import annotations

import pytest
from pydantic import ValidationError

from tandem_alerts.settings import AlertsOptions, AlertsSettings, SlackSettings, SmtpSettings


def test_without_credentials_every_alert_goes_to_the_log_sink():
    transports = AlertsSettings(env="dev").transports

    assert (transports.slack, transports.email) == (False, False)


def test_a_bot_token_and_an_smtp_host_enable_the_real_transports():
    settings = AlertsSettings(
        slack=SlackSettings(bot_token="xoxb-1"), smtp=SmtpSettings(host="smtp.example")
    )

    assert (settings.transports.slack, settings.transports.email) == (True, True)


def test_starttls_and_implicit_tls_are_exclusive():
    with pytest.raises(ValidationError, match="not both"):
        SmtpSettings(host="smtp.example", starttls=True, use_tls=True)


def test_prod_refuses_slack_without_a_signing_secret():
    settings = AlertsSettings(env="prod", slack=SlackSettings(bot_token="xoxb-real-token"))

    with pytest.raises(ValueError, match="SIGNING_SECRET"):
        settings.check_secrets()


def test_prod_refuses_a_placeholder_smtp_password():
    smtp = SmtpSettings(host="smtp.example", username="tandem", password="changeme")

    with pytest.raises(ValueError, match="SMTP__PASSWORD"):
        AlertsSettings(env="prod", smtp=smtp).check_secrets()


def test_dev_accepts_missing_secrets():
    settings = AlertsSettings(env="dev", slack=SlackSettings(bot_token="xoxb-1"))

    settings.check_secrets()
    assert settings.slack_signing_secret() == ""


def test_options_build_the_domain_policies():
    options = AlertsOptions(give_up_after_seconds=600, circuit_failure_threshold=2, pacing_burst=5)

    assert options.retry_policy().give_up_after == 600
    assert options.circuit_policy().failure_threshold == 2
    assert options.pacing_policy().burst == 5


def test_transient_failures_give_up_after_a_day_by_default():
    assert AlertsOptions().retry_policy().give_up_after == 24 * 3600
