"""Settings of the Alerts service: Slack, SMTP and delivery tuning on top of the shared ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import BaseModel, Field, SecretStr, model_validator

from tandem_alerts.domain.circuit import CircuitPolicy
from tandem_alerts.domain.delivery_policy import RetryPolicy
from tandem_alerts.domain.pacing import PacingPolicy
from tandem_alerts.domain.plan import Transports
from tandem_shared.settings import Settings


class SlackSettings(BaseModel):
    """TANDEM_SLACK__*: the bot that posts, and the secret that proves Slack called us."""

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    timeout_seconds: float = Field(default=10.0, gt=0)


class SmtpSettings(BaseModel):
    """TANDEM_SMTP__*: the mail server alerts go through."""

    host: str | None = None
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True  # STARTTLS on a plain connection (587)
    use_tls: bool = False  # implicit TLS (465); never together with starttls
    ca_file: str | None = None  # PEM bundle of a private CA the server's certificate chains to
    sender: str = "Tandem <alerts@tandem.example>"
    timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.starttls and self.use_tls:
            raise ValueError("set TANDEM_SMTP__STARTTLS or TANDEM_SMTP__USE_TLS, not both")
        return self


class AlertsOptions(BaseModel):
    """TANDEM_ALERTS__*: links, loop timings and the delivery policies."""

    crm_base_url: str | None = None  # resolves relative CRM links of alert requests
    poll_seconds: float = Field(default=0.5, gt=0)
    digest_poll_seconds: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)  # a crashed sender's claim expires after
    batch_size: int = Field(default=50, ge=1)
    # Messages one lease of a destination may send back to back (the pacer still decides).
    messages_per_lease: int = Field(default=20, ge=1)
    # A delivery failing transiently (5xx, timeouts, SMTP 4xx) gives up this long after its first
    # attempt, however many attempts that took; 429s never bring the give-up closer.
    give_up_after_seconds: float = Field(default=24 * 3600.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=300.0, ge=0)
    rate_limit_default_seconds: float = Field(default=30.0, ge=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_open_seconds: float = Field(default=60.0, gt=0)
    pacing_rate_per_second: float = Field(default=1.0, gt=0)
    pacing_burst: float = Field(default=3.0, ge=1)
    pacing_max_delay_seconds: float = Field(default=3.0, ge=0)

    def retry_policy(self) -> RetryPolicy:
        """Return the retry policy these options describe."""
        return RetryPolicy(
            give_up_after=self.give_up_after_seconds,
            base_delay=self.retry_base_seconds,
            max_delay=self.retry_max_seconds,
            default_rate_limit_wait=self.rate_limit_default_seconds,
        )

    def circuit_policy(self) -> CircuitPolicy:
        """Return the circuit breaker policy these options describe."""
        open_for = timedelta(seconds=self.circuit_open_seconds)
        return CircuitPolicy(
            failure_threshold=self.circuit_failure_threshold,
            open_for=open_for,
            trial_timeout=max(open_for, timedelta(seconds=self.lease_seconds)),
        )

    def pacing_policy(self) -> PacingPolicy:
        """Return the per-Slack-channel pacing these options describe."""
        return PacingPolicy(
            rate_per_second=self.pacing_rate_per_second,
            burst=self.pacing_burst,
            max_delay=timedelta(seconds=self.pacing_max_delay_seconds),
        )


class LinkSettings(BaseModel):
    """TANDEM_LINKS__*: one-click action links in emails (off until both are set)."""

    secret: SecretStr | None = None  # HMAC key of the links; rotate it to void every link
    base_url: str | None = None  # where this service's /v1/actions/ is reachable from mail
    max_age_hours: float = Field(default=72.0, gt=0)


class AlertsSettings(Settings):
    """Everything the Alerts service reads from its environment."""

    links: LinkSettings = LinkSettings()
    slack: SlackSettings = SlackSettings()
    smtp: SmtpSettings = SmtpSettings()
    alerts: AlertsOptions = AlertsOptions()

    @property
    def transports(self) -> Transports:
        """Return which real transports are configured (the rest go to the log sink)."""
        return Transports(slack=self.slack.bot_token is not None, email=bool(self.smtp.host))

    def slack_token(self) -> str:
        """Return the bot token, refusing a placeholder in prod."""
        return self.require_secret("TANDEM_SLACK__BOT_TOKEN", self.slack.bot_token)

    def slack_signing_secret(self) -> str:
        """Return the signing secret, refusing a missing or placeholder one in prod."""
        return self.require_secret("TANDEM_SLACK__SIGNING_SECRET", self.slack.signing_secret)

    def smtp_password(self) -> str | None:
        """Return the SMTP password when a username is set, refusing a placeholder in prod."""
        if self.smtp.username is None:
            return None
        return self.require_secret("TANDEM_SMTP__PASSWORD", self.smtp.password)

    def link_secret(self) -> str | None:
        """Return the action links' secret when links are on, refusing a placeholder in prod."""
        if self.links.secret is None or self.links.base_url is None:
            return None
        return self.require_secret("TANDEM_LINKS__SECRET", self.links.secret)

    def check_secrets(self) -> None:
        """Fail at start-up, not at the first alert, when a configured transport lacks a secret."""
        self.link_secret()
        if self.transports.slack:
            self.slack_token()
            self.slack_signing_secret()
        self.smtp_password()
