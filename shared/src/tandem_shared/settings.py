"""Settings from the environment (prefix TANDEM_, nested with "__"), validated at start-up."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "nobody set this": refused outside dev and test.
PLACEHOLDERS = frozenset(
    {"", "changeme", "change-me", "secret", "placeholder", "dev", "test", "xxx"}
)


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    # On for Apache Kafka; the embedded broker cannot do InitProducerId, so dev turns it off.
    idempotence: bool = False
    client_id: str = "tandem"
    max_attempts: int = Field(default=3, ge=1, le=20)  # handler tries before dead-lettering
    retry_backoff_seconds: float = Field(default=0.2, ge=0)
    max_poll_records: int = Field(default=500, ge=1)  # records one fetch returns, all partitions
    # Assigned partitions processed at once, each in order; bulk ones (intent files, CRM sync)
    # never hold every slot, so a meeting request always finds one free.
    max_concurrency: int = Field(default=4, ge=1)
    # Records of one partition handled in one transaction (1: one transaction per message).
    batch_max_records: int = Field(default=100, ge=1)
    # Batches of bulk topics are smaller: a real-time batch waits for at most the bulk ones in
    # hand (their locks, their CPU), and no new one starts while real-time records wait.
    bulk_batch_max_records: int = Field(default=25, ge=1)
    # How long the broker holds a fetch open when no data is there: bounds how late a resumed
    # partition's records arrive on an idle system.
    fetch_max_wait_ms: int = Field(default=100, ge=1)
    stall_seconds: float = Field(default=30.0, gt=0)  # readiness fails past this without a poll
    # Group timings. Kafka's defaults suit Apache Kafka; the embedded broker waits out a departed
    # member's whole session before rebalancing, so the local stack and tests shorten them.
    session_timeout_ms: int = Field(default=45_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    rebalance_timeout_ms: int = Field(default=60_000, ge=1_000)


class DatabaseSettings(BaseModel):
    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/tandem"
    pool_size: int = Field(default=10, ge=1)
    echo: bool = False


class TelemetrySettings(BaseModel):
    otlp_endpoint: str | None = None  # OTLP/HTTP collector; None exports nothing
    log_level: str = "INFO"
    json_logs: bool = True


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000


class OutboxSettings(BaseModel):
    batch_size: int = Field(default=500, ge=1)
    poll_seconds: float = Field(default=1.0, gt=0)  # fallback when no NOTIFY arrives
    # Wait this long after a NOTIFY before claiming rows, so one batch carries the rows of
    # several commits (a batch's round trips cost more than its rows).
    linger_seconds: float = Field(default=0.0, ge=0)
    # Published rows are kept this long, so a broker that lost them gets them again (0: none).
    keep_published_hours: float = Field(default=24.0, ge=0)
    # How often the relay compares the broker's end offsets with what it acknowledged.
    broker_check_seconds: float = Field(default=5.0, gt=0)


class Settings(BaseSettings):
    """What every Tandem service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="TANDEM_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    env: Environment = Environment.DEV
    service: str = "tandem"
    config_dir: Path = Path("config/example")
    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    http: HttpSettings = HttpSettings()
    outbox: OutboxSettings = OutboxSettings()
    # The conventional unprefixed names win when set, so operators can use what they know.
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL"))
    otel_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )

    @model_validator(mode="after")
    def _apply_conventional_names(self) -> Self:
        if self.kafka_bootstrap_servers:
            self.kafka = self.kafka.model_copy(
                update={"bootstrap_servers": self.kafka_bootstrap_servers}
            )
        if self.database_url:
            self.database = self.database.model_copy(update={"url": async_url(self.database_url)})
        if self.otel_endpoint and not self.telemetry.otlp_endpoint:
            self.telemetry = self.telemetry.model_copy(update={"otlp_endpoint": self.otel_endpoint})
        return self

    def require_secret(self, name: str, value: SecretStr | None) -> str:
        """Return a secret's value, refusing a missing or placeholder one outside dev and test."""
        raw = value.get_secret_value() if value is not None else ""
        if self.env is Environment.PROD and raw.strip().lower() in PLACEHOLDERS:
            raise ValueError(f"{name} is not set (or is a placeholder); refusing to start in prod")
        return raw


def async_url(url: str) -> str:
    """Return a SQLAlchemy asyncpg URL for a plain postgres:// or postgresql:// URL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
