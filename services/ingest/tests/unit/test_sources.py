"""Parsing sources.yaml content and resolving secrets per environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tandem_ingest.domain.hubspot import HubSpotConfig
from tandem_ingest.domain.salesforce import SalesforceConfig
from tandem_ingest.domain.sources import SourceKind, SourcesError, parse_sources

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "example" / "sources.yaml"


def one(**entry: Any) -> dict[str, Any]:
    return {"sources": [{"name": "src", "kind": "generic", **entry}]}


def test_the_example_file_loads_in_dev_with_every_kind() -> None:
    sources = parse_sources(yaml.safe_load(EXAMPLE.read_text()), environ={}, production=False)
    assert sources["demo"].kind is SourceKind.GENERIC
    assert sources["demo"].secrets[0].startswith("whsec_")
    assert {source.kind for source in sources.values()} == set(SourceKind)
    assert isinstance(sources["hubspot"].config, HubSpotConfig)
    assert isinstance(sources["salesforce"].config, SalesforceConfig)
    assert sources["bombora"].is_upload


def test_env_secrets_come_first_and_all_are_active() -> None:
    data = one(secrets=["NEW", "OLD", "UNSET"], dev_secrets=["dev-value"])
    [source] = parse_sources(data, environ={"NEW": "n1", "OLD": "o1"}, production=False).values()
    assert source.secrets == ("n1", "o1", "dev-value")


def test_prod_refuses_dev_secrets() -> None:
    with pytest.raises(SourcesError, match="dev_secrets are refused in prod"):
        parse_sources(one(secrets=["S"], dev_secrets=["dev-value"]), environ={}, production=True)
    data = one(secrets=["S"], dev_secrets=["dev-value"])
    [source] = parse_sources(data, environ={"S": "real-secret"}, production=True).values()
    assert source.secrets == ("real-secret",)


def test_prod_refuses_a_placeholder_secret() -> None:
    with pytest.raises(SourcesError, match="placeholder"):
        parse_sources(one(secrets=["S"]), environ={"S": "changeme"}, production=True)


def test_a_signed_kind_cannot_be_unsigned_and_unsigned_needs_no_secret() -> None:
    with pytest.raises(SourcesError, match="must be signed"):
        parse_sources(one(unsigned=True), environ={}, production=False)
    data = {"sources": [{"name": "sf", "kind": "salesforce_outbound", "unsigned": True}]}
    assert parse_sources(data, environ={}, production=True)["sf"].secrets == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sources": {}}, "list of sources"),
        ({"sources": [{"name": "a", "kind": "nope", "dev_secrets": ["x"]}]}, "sources\\[0\\]"),
        (
            one(dev_secrets=["x"], config={"a": 1}),
            "'src' config: 1 validation error for GenericConfig",
        ),
        (
            {
                "sources": [
                    {"name": "h", "kind": "hubspot", "dev_secrets": ["x"], "config": {"x": 1}}
                ]
            },
            "config",
        ),
        ({"sources": [one(dev_secrets=["x"])["sources"][0]] * 2}, "defined twice"),
        (one(), "no active secret"),
    ],
)
def test_unusable_configurations_are_refused(data: Any, message: str) -> None:
    with pytest.raises(SourcesError, match=message):
        parse_sources(data, environ={}, production=False)
