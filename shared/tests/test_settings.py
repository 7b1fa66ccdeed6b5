import pytest
from pydantic import SecretStr

from tandem_shared.settings import Environment, Settings, async_url


def test_conventional_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/tandem")
    monkeypatch.setenv("TANDEM_KAFKA__IDEMPOTENCE", "true")
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.kafka.idempotence is True
    assert settings.database.url == "postgresql+asyncpg://u@db/tandem"


def test_placeholder_secrets_are_refused_in_prod_only() -> None:
    prod = Settings(env=Environment.PROD)
    with pytest.raises(ValueError, match="TANDEM_SLACK__BOT_TOKEN"):
        prod.require_secret("TANDEM_SLACK__BOT_TOKEN", SecretStr("changeme"))
    with pytest.raises(ValueError):
        prod.require_secret("X", None)
    assert prod.require_secret("X", SecretStr("xoxb-real")) == "xoxb-real"
    assert Settings(env=Environment.DEV).require_secret("X", SecretStr("changeme")) == "changeme"


def test_async_url_leaves_asyncpg_urls_alone() -> None:
    assert async_url("postgresql+asyncpg://a/b") == "postgresql+asyncpg://a/b"
    assert async_url("postgresql://a/b") == "postgresql+asyncpg://a/b"
