"""Property-based run of schemathesis against the gateway's OpenAPI spec: no server error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from conftest import Infra
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from test_gateway_support import (
    PEOPLE,
    build_scenario,
    gateway_for,
    gateway_settings,
    issue_key,
    migrate_gateway,
    project,
)

from tandem_api_gateway.app import create_app
from tandem_api_gateway.domain.authz import Role

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25


@pytest.fixture(scope="module", params=[Role.REVOPS_ADMIN, Role.REP], ids=str)
def spec_and_key(infra: Infra, request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    """The schema with a leader's or a rep's key; NullPool, as the ASGI client has its own loop."""
    gw_settings = gateway_settings(infra, rate_limit_burst=100_000)
    engine = create_async_engine(
        gw_settings.database.url,
        poolclass=pool.NullPool,
        connect_args={"server_settings": {"search_path": "api_gateway,public"}},
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def prepare() -> str:
        await migrate_gateway(infra)
        await project(sessions, build_scenario(f"schemathesis-{request.param}").all())
        return await issue_key(sessions, gw_settings, request.param, PEOPLE[request.param])

    key = asyncio.run(prepare())
    app = create_app(gateway=gateway_for(gw_settings, sessions), runtime_getter=lambda: None)
    yield schemathesis.openapi.from_asgi("/openapi.json", app), key


def test_the_spec_is_served_with_every_endpoint(spec_and_key: tuple[Any, str]) -> None:
    schema, _ = spec_and_key
    paths = set(schema.raw_schema["paths"])
    assert {"/v1/accounts", "/v1/tal/proposals", "/v1/metrics/alignment", "/v1/stream"} <= paths


def test_no_operation_answers_a_server_error(spec_and_key: tuple[Any, str]) -> None:
    schema, key = spec_and_key
    headers = {"Authorization": f"Bearer {key}"}
    # The stream never ends by design, and /readyz answers 503 by design without a runtime:
    # every other operation is fuzzed.
    skipped = {"/v1/stream", "/readyz"}
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path not in skipped
    ]
    assert len(operations) >= 12
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert failures == []
