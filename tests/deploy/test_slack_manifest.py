"""Tandem's Slack app manifest: the scopes alerts needs, and a request URL the Ingress routes."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import yaml
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "deploy/slack/manifest.yaml").read_text(encoding="utf-8"))
# The Web API methods alerts calls, and the bot scope each needs.
SCOPES_BY_METHOD = {"chat_postMessage": {"chat:write", "chat:write.public"}}


def test_the_interactivity_url_reaches_alerts_interactions_route(
    checks: ModuleType, apps: dict[str, FastAPI]
) -> None:
    alerts = apps["alerts"]
    interactivity = MANIFEST["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    url = urlsplit(interactivity["request_url"])
    assert url.scheme == "https"
    paths = checks.ingress_paths(checks.load_documents([checks.BASE_INGRESS]))
    taken = checks.route_for(paths, url.hostname, url.path)
    assert taken is not None and taken.service == "alerts", taken
    assert url.path in checks.public_paths(alerts)
    assert "post" in alerts.openapi()["paths"][url.path]


def test_the_scopes_are_those_of_the_methods_alerts_calls() -> None:
    sources = (ROOT / "services/alerts/src").rglob("*.py")
    called = {m for f in sources for m in re.findall(r"_client\.(\w+)\(", f.read_text())}
    assert called == set(SCOPES_BY_METHOD)
    wanted = set().union(*SCOPES_BY_METHOD.values())
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == wanted
    assert (
        MANIFEST["features"]["bot_user"]["display_name"] == MANIFEST["display_information"]["name"]
    )
