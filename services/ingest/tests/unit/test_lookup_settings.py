"""What lookups depend on besides the mappings: tokens, sources without one, rate-limit waits."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tandem_ingest.adapters.api_errors import ApiError
from tandem_ingest.adapters.hubspot_api import rate_limit_wait
from tandem_ingest.adapters.outreach_api import reset_wait
from tandem_ingest.domain.hubspot import HubSpotConfig
from tandem_ingest.domain.outreach import OutreachConfig
from tandem_ingest.domain.sources import SourcesError, parse_sources
from tandem_ingest.main import without_fetching
from tandem_ingest.settings import HubSpotApiSettings, IngestSettings

SOURCES = {
    "sources": [
        {"name": "hubspot", "kind": "hubspot", "dev_secrets": ["x"]},
        {
            "name": "outreach",
            "kind": "outreach",
            "dev_secrets": ["y"],
            "config": {"crm": "hubspot"},
        },
        {"name": "demo", "kind": "generic", "dev_secrets": ["z"]},
    ]
}


def test_a_blank_token_is_unset_and_a_placeholder_is_refused_in_prod() -> None:
    blank = IngestSettings(hubspot=HubSpotApiSettings(access_token=SecretStr("  ")))
    assert blank.hubspot_token() is None and blank.outreach_token() is None
    real = IngestSettings(hubspot=HubSpotApiSettings(access_token=SecretStr("pat-na1-1")))
    assert real.hubspot_token() == "pat-na1-1"
    placeholder = HubSpotApiSettings(access_token=SecretStr("changeme"))
    with pytest.raises(ValueError, match="TANDEM_HUBSPOT__ACCESS_TOKEN"):
        IngestSettings(env="prod", hubspot=placeholder).hubspot_token()


def test_sources_whose_vendor_has_no_token_do_not_fetch_outside_prod() -> None:
    sources = parse_sources(SOURCES, environ={}, production=False)
    kept = without_fetching(sources, {"outreach"}, production=False)
    assert isinstance(kept["hubspot"].config, HubSpotConfig)
    assert kept["hubspot"].config.fetch_records is False
    assert isinstance(kept["outreach"].config, OutreachConfig)
    assert kept["outreach"].config.fetch_records is True
    assert kept["demo"] is sources["demo"]


def test_prod_refuses_a_source_that_needs_a_missing_token() -> None:
    sources = parse_sources(SOURCES, environ={}, production=False)
    with pytest.raises(SourcesError, match="TANDEM_HUBSPOT__ACCESS_TOKEN"):
        without_fetching(sources, {"outreach"}, production=True)
    assert without_fetching(sources, {"hubspot", "outreach"}, production=True) == sources


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"x-hubspot-ratelimit-interval-milliseconds": "10000"}, 10.0),
        ({"retry-after": "soon", "x-hubspot-ratelimit-interval-milliseconds": "1000"}, 1.0),
        ({}, None),
    ],
)
def test_hubspot_says_how_long_to_wait(headers: dict[str, str], wait: float | None) -> None:
    assert rate_limit_wait(headers) == wait


def test_outreach_says_until_when_to_wait() -> None:
    assert reset_wait({"retry-after": "5"}, now=1_700_000_000.0) == 5.0
    assert reset_wait({"x-ratelimit-reset": "1700000042"}, now=1_700_000_000.0) == 42.0
    assert reset_wait({"x-ratelimit-reset": "1690000000"}, now=1_700_000_000.0) == 0.0
    assert reset_wait({}, now=1_700_000_000.0) is None


@pytest.mark.parametrize(
    ("status", "refused"), [(400, True), (404, True), (401, False), (429, False), (503, False)]
)
def test_only_a_refusal_of_the_ids_asked_splits_a_batch(status: int, refused: bool) -> None:
    assert ApiError("x", status=status).refused_request is refused
    assert ApiError("connection reset").refused_request is False
