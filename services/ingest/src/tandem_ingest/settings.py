"""Settings of the ingest service: the shared ones plus its own (TANDEM_INGEST__...)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from tandem_shared.settings import OutboxSettings, Settings


class IngestOptions(BaseModel):
    """Limits, retention and proxy trust of the ingest HTTP API."""

    sources_file: str = "sources.yaml"  # relative to TANDEM_CONFIG_DIR
    max_body_bytes: int = Field(default=1 << 20, gt=0)  # webhooks; a source may lower or raise it
    max_upload_bytes: int = Field(default=4 << 30, gt=0)  # streamed files (Bombora)
    upload_chunk_bytes: int = Field(default=256 << 10, gt=0)  # archive chunk size of uploads
    upload_batch_events: int = Field(default=1000, ge=1)  # events written per statement
    # Rebuild the URL vendors signed from X-Forwarded-Proto/Host: only behind a proxy you run.
    trust_forwarded: bool = False
    # Raw payloads and dedupe keys older than this are purged; keep it past vendors' retries (24 h).
    raw_retention_days: float = Field(default=30.0, ge=1)
    purge_every_seconds: float = Field(default=3600.0, gt=0)
    purge_batch_rows: int = Field(default=5000, ge=1)
    replay_batch_payloads: int = Field(default=100, ge=1)


class HubSpotApiSettings(BaseModel):
    """TANDEM_HUBSPOT__*: HubSpot's CRM API, which fills thin webhooks in (a private app's token,
    scopes crm.objects.contacts.read, crm.objects.companies.read and the activities' read)."""

    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    timeout_seconds: float = Field(default=10.0, gt=0)


class OutreachApiSettings(BaseModel):
    """TANDEM_OUTREACH__*: Outreach's API, for the rep's and the prospect's emails (an OAuth
    access token with users.read, prospects.read and accounts.read)."""

    access_token: SecretStr | None = None
    base_url: str = "https://api.outreach.io"
    timeout_seconds: float = Field(default=10.0, gt=0)


class LookupSettings(BaseModel):
    """TANDEM_LOOKUPS__*: the worker that fills lookups in from the vendors' APIs."""

    # Lookups taken per round: their reads go in batches of up to 100 ids per request.
    batch_size: int = Field(default=100, ge=1, le=100)
    poll_seconds: float = Field(default=1.0, gt=0)
    # A claimed lookup whose worker died is taken again after this.
    lease_seconds: float = Field(default=120.0, gt=0)
    # An outage or a refusal is retried after retry_base_seconds, doubling up to the max; a 429
    # waits what the vendor asks (Retry-After, or its rate-limit window) and is not a failure.
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)


class IngestOutboxSettings(OutboxSettings):
    """The relay of a webhook receiver: commits come many a second, each with a few rows."""

    # 10 ms later on the topic saves the relay's per-batch round trips for most commits.
    linger_seconds: float = Field(default=0.01, ge=0)
    # A batch costs ~40 ms of round trips (claim, Kafka acks, commit) whatever its size: at 500
    # rows the relay fell behind 13,000 events/s, at 2,000 it keeps up.
    batch_size: int = Field(default=2000, ge=1)


class IngestSettings(Settings):
    """What the ingest service reads from its environment."""

    ingest: IngestOptions = IngestOptions()
    hubspot: HubSpotApiSettings = HubSpotApiSettings()
    outreach: OutreachApiSettings = OutreachApiSettings()
    lookups: LookupSettings = LookupSettings()
    # A subclass, not a changed instance: TANDEM_OUTBOX__... variables keep the other defaults.
    outbox: IngestOutboxSettings = IngestOutboxSettings()

    def hubspot_token(self) -> str | None:
        """Return the CRM API token, or None when unset or blank (a placeholder fails in prod)."""
        return self._token("TANDEM_HUBSPOT__ACCESS_TOKEN", self.hubspot.access_token)

    def outreach_token(self) -> str | None:
        """Return the Outreach API token, or None when unset or blank (refused as a placeholder)."""
        return self._token("TANDEM_OUTREACH__ACCESS_TOKEN", self.outreach.access_token)

    def _token(self, name: str, value: SecretStr | None) -> str | None:
        # Blank is unset: compose passes every variable, empty when the operator set none.
        if value is None or not value.get_secret_value().strip():
            return None
        return self.require_secret(name, value)
