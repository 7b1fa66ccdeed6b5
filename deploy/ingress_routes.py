"""Check that the Ingress and the services' HTTP routes agree (run by deploy/validate.sh).

Every public route of a service behind the Ingress (ingest, alerts, api-gateway; their
OpenAPI paths minus the health, readiness and metrics probes) must reach that service through
some host's rules, and every Ingress path must lead to a route of its backend. Routes come from
each service's own composition root (`build_service()`), built but never started, so a router
the service forgot to include counts as missing. Paths are matched as Kubernetes does: `Exact`
as is, `Prefix` element-wise, the longest match of a host winning.

    python deploy/ingress_routes.py                      the Kustomize base's ingress.yaml
    python deploy/ingress_routes.py rendered/dev.yaml    rendered overlays (kubectl kustomize)
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from starlette.routing import Match

ROOT = Path(__file__).resolve().parent.parent
BASE_INGRESS = ROOT / "deploy/k8s/base/apps/ingress.yaml"
OVERLAYS = ROOT / "deploy/k8s/overlays"
# Probes and metrics are scraped inside the cluster, not published.
INTERNAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_PARAM = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class IngressPath:
    """One rule path of an Ingress: host, path, how it matches, and the Service it goes to."""

    ingress: str
    host: str
    path: str
    path_type: str
    service: str

    def matches(self, path: str) -> bool:
        """Tell whether a request path matches this rule path (Kubernetes' Ingress semantics)."""
        if self.path_type == "Exact":
            return path == self.path
        wanted = [p for p in self.path.split("/") if p]
        return [p for p in path.split("/") if p][: len(wanted)] == wanted

    def __str__(self) -> str:
        return f"{self.ingress}: {self.host}{self.path} ({self.path_type}) -> {self.service}"


def ingress_paths(documents: Iterable[Mapping[str, Any]]) -> list[IngressPath]:
    """Return the rule paths of every Ingress among the documents."""
    found = []
    for doc in documents:
        if doc.get("kind") != "Ingress":
            continue
        name = doc["metadata"]["name"]
        for rule in doc["spec"].get("rules", []):
            for item in rule.get("http", {}).get("paths", []):
                found.append(
                    IngressPath(
                        ingress=name,
                        host=rule.get("host", "*"),
                        path=item.get("path", "/"),
                        path_type=item["pathType"],
                        service=item["backend"]["service"]["name"],
                    )
                )
    return found


def load_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Return the YAML documents of the files."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def route_for(paths: list[IngressPath], host: str, path: str) -> IngressPath | None:
    """Return the rule path a request to host+path takes: the host's longest match."""
    candidates = [p for p in paths if p.host == host and p.matches(path)]
    # Exact beats Prefix at equal length, as in the Ingress spec.
    return max(
        candidates, key=lambda p: (len(p.path.rstrip("/")), p.path_type == "Exact"), default=None
    )


def sample_path(template: str) -> str:
    """Return a concrete request path for a route template (`/v1/webhooks/{name}`)."""
    return _PARAM.sub("x", template)


def public_paths(app: FastAPI) -> list[str]:
    """Return the route templates a service publishes (its OpenAPI paths minus the probes)."""
    return [p for p in app.openapi()["paths"] if p not in INTERNAL_PATHS]


def serves(app: FastAPI, path: str) -> bool:
    """Tell whether any route of the app takes this path (whatever the method)."""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": []}
    return any(route.matches(scope)[0] is not Match.NONE for route in app.router.routes)


def problems(paths: list[IngressPath], apps: Mapping[str, FastAPI]) -> list[str]:
    """Return every public route the Ingress does not reach and every path that leads nowhere."""
    found = []
    hosts = sorted({p.host for p in paths})
    for service, app in apps.items():
        for template in public_paths(app):
            sample = sample_path(template)
            taken = [route_for(paths, host, sample) for host in hosts]
            if not any(t is not None and t.service == service for t in taken):
                found.append(f"{service} route {template} is not reachable through any Ingress")
    for rule in paths:
        app = apps.get(rule.service)
        if app is None:
            found.append(f"{rule} leads to a service with no public routes")
            continue
        probe = rule.path if rule.path_type == "Exact" else rule.path.rstrip("/") + "/x"
        reached = any(
            route_for(paths, rule.host, sample_path(t)) == rule for t in public_paths(app)
        )
        if not reached and not serves(app, probe):
            found.append(f"{rule} leads nowhere: {rule.service} serves nothing under it")
    return found


async def public_apps(config_dir: Path = ROOT / "config/example") -> dict[str, FastAPI]:
    """Build (not start) the services behind the Ingress; keyed by their Kubernetes Service."""
    from tandem_alerts.main import build_service as build_alerts
    from tandem_alerts.settings import AlertsSettings, LinkSettings
    from tandem_api_gateway.main import build_service as build_gateway
    from tandem_api_gateway.settings import GatewaySettings
    from tandem_ingest.main import build_service as build_ingest
    from tandem_ingest.settings import IngestSettings

    built = {
        "ingest": build_ingest(IngestSettings(config_dir=config_dir)),
        # With every optional route on: email action links publish /v1/actions/{token}.
        "alerts": build_alerts(
            AlertsSettings(
                config_dir=config_dir,
                links=LinkSettings(secret="ingress-check", base_url="https://hooks.example"),  # noqa: S106
            )
        ),
        "api-gateway": build_gateway(GatewaySettings(config_dir=config_dir)),
    }
    for service in built.values():
        # Nothing was started: release the clients the composition root created.
        await service.infra.producer.stop()
        await service.infra.engine.dispose()
    return {name: service.app for name, service in built.items()}


def overlay_path_patches(overlays: Path = OVERLAYS) -> list[str]:
    """Return the overlays' Ingress patches that touch rule paths (only hosts may change)."""
    found = []
    for kustomization in sorted(overlays.glob("*/kustomization.yaml")):
        document = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        for patch in document.get("patches", []):
            if patch.get("target", {}).get("kind") != "Ingress":
                continue
            ops = yaml.safe_load(patch.get("patch", "")) or []
            for op in ops if isinstance(ops, list) else [{"path": "(strategic merge)"}]:
                if not re.fullmatch(r"/spec/(tls/\d+/hosts|rules/\d+/host)", op.get("path", "")):
                    found.append(f"{kustomization.parent.name}: Ingress patch of {op.get('path')}")
    return found


def main(argv: list[str]) -> int:
    """Check the given rendered manifests (or the base Ingress); print problems, exit 1 on any."""
    files = [Path(a) for a in argv] or [BASE_INGRESS]
    apps = asyncio.run(public_apps())
    failures = []
    for file in files:
        paths = ingress_paths(load_documents([file]))
        if not paths:
            failures.append(f"{file}: no Ingress rule paths")
        failures += [f"{file.name}: {p}" for p in problems(paths, apps)]
    for failure in failures:
        print(f"   FAIL: {failure}", file=sys.stderr)  # noqa: T201 - a command-line report
    if not failures:
        print(f"   ingress routes: ok ({', '.join(f.name for f in files)})")  # noqa: T201
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
