"""Email rendering: subject, plain text and HTML for one alert or a digest (Jinja2 templates)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tandem_alerts.domain.digest import Digest
from tandem_alerts.domain.labels import account_label, kind_label, signal_label, tier_label
from tandem_shared.directory import Person
from tandem_shared.events import AlertRequested

MAX_SUBJECT = 200
MAX_ENGAGEMENT_ITEMS = 25
MAX_LIST_ITEMS = 20
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderedEmail:
    """The parts of one email message."""

    subject: str
    text: str
    html: str


@cache
def template_environment() -> Environment:
    """Build (once, on first use) the Jinja2 environment over the package's templates."""
    return Environment(
        loader=PackageLoader("tandem_alerts", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_alert_email(
    alert: AlertRequested,
    *,
    recipient: Person | None = None,
    assignee: Person | None = None,
    covering_for: Person | None = None,
    action_links: Sequence[tuple[str, str]] = (),
    env: Environment | None = None,
) -> RenderedEmail:
    """Render one alert as an email, with times in the recipient's time zone.

    `action_links` are (label, url) of the signed one-click actions the recipient may take.
    """
    zone = recipient.zone if recipient is not None else ZoneInfo("UTC")
    model = {
        "alert": alert,
        "recipient_name": recipient.name if recipient is not None else None,
        "kind": kind_label(alert.kind),
        "account": account_label(alert) if alert.account_name or alert.account_key else None,
        "tier": tier_label(alert.tier) if alert.tier else None,
        "signal": signal_label(alert.signal) if alert.signal else None,
        "assignee": assignee.name if assignee is not None else alert.assignee_id,
        "crm_url": web_url(alert.crm_url),
        "covering_for": covering_for.name if covering_for is not None else None,
        "deadline": local_time(alert.sla_deadline, zone) if alert.sla_deadline else None,
        "action_links": [{"label": label, "url": url} for label, url in action_links],
        **_context_model(alert, zone),
    }
    return _render("alert", model, env)


def render_digest_email(
    digest: Digest, *, recipient: Person, env: Environment | None = None
) -> RenderedEmail:
    """Render a person's digest as one email, grouped by account."""
    groups = [
        {
            "label": group.label,
            "alerts": [
                {
                    "title": a.title,
                    "kind": kind_label(a.kind),
                    "summary": a.summary,
                    "crm_url": web_url(a.crm_url),
                    "tier": tier_label(a.tier) if a.tier else None,
                    "requested": local_time(a.requested_at, recipient.zone),
                }
                for a in group.alerts
            ],
        }
        for group in digest.groups
    ]
    model = {
        "recipient_name": recipient.name,
        "count": digest.alert_count,
        "groups": groups,
        "generated": local_time(digest.generated_at, recipient.zone),
    }
    return _render("digest", model, env)


def local_time(moment: datetime, zone: tzinfo) -> str:
    """Format an instant for a reader in `zone`, e.g. 'Tue 14 May 2024, 10:00 EDT'."""
    return moment.astimezone(zone).strftime("%a %d %b %Y, %H:%M %Z")


def web_url(url: str | None) -> str | None:
    """Return the URL when it is http(s), else None (no javascript: links in an email)."""
    if url is None:
        return None
    return url if url.lower().startswith(("https://", "http://")) else None


def _context_model(alert: AlertRequested, zone: tzinfo) -> dict[str, Any]:
    ctx = alert.context
    engagements = sorted(ctx.engagement_history, key=lambda e: e.occurred_at, reverse=True)
    return {
        "research_summary": ctx.research_summary,
        "engagements": [
            {
                "when": local_time(e.occurred_at, zone),
                "what": e.name or e.kind.replace("_", " "),
                "contact": e.contact,
            }
            for e in engagements[:MAX_ENGAGEMENT_ITEMS]
        ],
        "engagements_more": max(0, len(engagements) - MAX_ENGAGEMENT_ITEMS),
        "content": ctx.content_consumed[:MAX_LIST_ITEMS],
        "content_more": max(0, len(ctx.content_consumed) - MAX_LIST_ITEMS),
        "intents": ctx.intent_signals[:MAX_LIST_ITEMS],
        "intents_more": max(0, len(ctx.intent_signals) - MAX_LIST_ITEMS),
        "suggested_approach": ctx.suggested_approach,
    }


def _render(name: str, model: dict[str, Any], env: Environment | None) -> RenderedEmail:
    environment = env or template_environment()
    subject = environment.get_template(f"{name}.subject.txt").render(model)
    return RenderedEmail(
        subject=_one_line(subject),
        text=environment.get_template(f"{name}.txt").render(model),
        html=environment.get_template(f"{name}.html").render(model),
    )


def _one_line(subject: str) -> str:
    # A header must stay one line: user text with CR/LF must not inject headers.
    flat = _WHITESPACE.sub(" ", subject).strip()
    return flat if len(flat) <= MAX_SUBJECT else flat[: MAX_SUBJECT - 1].rstrip() + "…"
