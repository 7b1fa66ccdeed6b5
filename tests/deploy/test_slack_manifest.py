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
# The Web API methods alerts calls, and the bot scopes each needs (views.open needs none: a
# click's trigger_id is its permission); the /tandem slash command needs `commands`.
SCOPES_BY_METHOD = {
    "chat.postMessage": {"chat:write", "chat:write.public"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "views.open": set(),
    # Looking for a message a dead sender may have posted: a DM's id, then its history.
    "conversations.open": {"im:write"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
}
COMMAND_SCOPES = {"commands"}
# Calls by name (`_client.chat_postMessage(`) or through a generic call with the method's name.
_NAMED = re.compile(r"_client\.(?!call\b|api_call\b)(\w+)\(")
_BY_NAME = re.compile(r'"((?:chat|views|users|conversations|reactions)\.\w+)"')


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


def test_the_slash_command_url_reaches_alerts_commands_route(
    checks: ModuleType, apps: dict[str, FastAPI]
) -> None:
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["command"] == "/tandem"
    url = urlsplit(command["url"])
    paths = checks.ingress_paths(checks.load_documents([checks.BASE_INGRESS]))
    taken = checks.route_for(paths, url.hostname, url.path)
    assert taken is not None and taken.service == "alerts", taken
    assert "post" in apps["alerts"].openapi()["paths"][url.path]


def test_the_scopes_are_those_of_the_methods_alerts_calls() -> None:
    texts = [f.read_text() for f in (ROOT / "services/alerts/src").rglob("*.py")]
    called = {m.replace("_", ".", 1) for t in texts for m in _NAMED.findall(t)}
    called |= {m for t in texts for m in _BY_NAME.findall(t)}
    assert called == set(SCOPES_BY_METHOD)
    wanted = set().union(*SCOPES_BY_METHOD.values(), COMMAND_SCOPES)
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == wanted
    assert (
        MANIFEST["features"]["bot_user"]["display_name"] == MANIFEST["display_information"]["name"]
    )
