"""The Ingress reaches every public route of ingest, alerts and the gateway, and nothing else."""

from __future__ import annotations

from types import ModuleType

import yaml
from fastapi import FastAPI


def test_every_public_route_is_reachable_and_every_path_leads_somewhere(
    checks: ModuleType, apps: dict[str, FastAPI]
) -> None:
    paths = checks.ingress_paths(checks.load_documents([checks.BASE_INGRESS]))
    assert {p.service for p in paths} == {"ingest", "alerts", "api-gateway"}
    assert checks.problems(paths, apps) == []


def test_overlays_change_only_the_ingress_hosts(checks: ModuleType) -> None:
    # validate.sh checks the rendered overlays in full; here, no overlay may move a path.
    assert checks.overlay_path_patches() == []


# The Ingress as it was first written: vendor webhooks, uploads and Slack clicks all 404.
PREFIXES_WITHOUT_VERSION = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: tandem-hooks}
spec:
  rules:
    - host: hooks.example.com
      http:
        paths:
          - {path: /webhooks, pathType: Prefix, backend: {service: {name: ingest}}}
          - {path: /slack, pathType: Prefix, backend: {service: {name: alerts}}}
    - host: app.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: api-gateway}}}
"""


def test_unversioned_prefixes_are_reported_both_ways(
    checks: ModuleType, apps: dict[str, FastAPI]
) -> None:
    paths = checks.ingress_paths(yaml.safe_load_all(PREFIXES_WITHOUT_VERSION))
    found = checks.problems(paths, apps)
    assert "ingest route /v1/webhooks/{name} is not reachable through any Ingress" in found
    assert "ingest route /v1/uploads/{name} is not reachable through any Ingress" in found
    assert "alerts route /v1/slack/interactions is not reachable through any Ingress" in found
    assert sum("leads nowhere" in f for f in found) == 2
    assert not any("api-gateway" in f for f in found)


def test_a_path_to_an_internal_service_or_a_shadowed_route_is_reported(
    checks: ModuleType, apps: dict[str, FastAPI]
) -> None:
    document = yaml.safe_load(PREFIXES_WITHOUT_VERSION)
    hooks = document["spec"]["rules"][0]["http"]["paths"]
    hooks[0] = {"path": "/v1", "pathType": "Prefix", "backend": {"service": {"name": "ingest"}}}
    hooks[1] = {"path": "/v1/x", "pathType": "Exact", "backend": {"service": {"name": "router"}}}
    found = checks.problems(checks.ingress_paths([document]), apps)
    assert any("-> router leads to a service with no public routes" in f for f in found)
    # /v1 -> ingest takes the Slack route's path on that host: alerts is unreachable.
    assert "alerts route /v1/slack/interactions is not reachable through any Ingress" in found
    assert not any("/v1/webhooks" in f or "/v1/uploads" in f for f in found)


def test_prefix_matching_is_element_wise(checks: ModuleType) -> None:
    rule = checks.IngressPath("i", "h", "/v1/slack", "Prefix", "alerts")
    assert rule.matches("/v1/slack/interactions")
    assert rule.matches("/v1/slack")
    assert not rule.matches("/v1/slackers")
    exact = checks.IngressPath("i", "h", "/v1/slack", "Exact", "alerts")
    assert not exact.matches("/v1/slack/interactions")
