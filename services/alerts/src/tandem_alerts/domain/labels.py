"""Human words for Tandem's enums, shared by the Slack and email renderers."""

from __future__ import annotations

from tandem_shared.events import AlertKind, AlertRequested, Signal, Tier

_KINDS = {
    AlertKind.HANDOFF: "New handoff",
    AlertKind.HANDOFF_FYI: "Handoff FYI",
    AlertKind.MARKETING_FYI: "Marketing FYI",
    AlertKind.SLA_WARNING: "SLA warning",
    AlertKind.SLA_BREACH: "SLA breached",
    AlertKind.SLA_ESCALATION: "SLA escalation",
    AlertKind.ROUTING_CONFLICT: "Routing conflict",
}

_SIGNALS = {
    Signal.MEETING_REQUEST: "Meeting request",
    Signal.ENGAGEMENT_SPIKE: "Engagement spike",
    Signal.MULTIPLE_CONTACTS: "Multiple contacts engaged",
    Signal.INTENT_SURGE: "Intent surge",
    Signal.INBOUND_LEAD: "Inbound lead",
}


def kind_label(kind: AlertKind) -> str:
    """Return the words for an alert kind."""
    return _KINDS.get(kind, kind.value.replace("_", " ").capitalize())


def signal_label(signal: Signal) -> str:
    """Return the words for a handoff signal."""
    return _SIGNALS.get(signal, signal.value.replace("_", " ").capitalize())


def tier_label(tier: Tier) -> str:
    """Return 'Tier 1' and so on."""
    return f"Tier {tier.value}"


# The one reason a cover receives someone's alert (see plan._plan_person).
COVER_REASON = "quiet hours"


def covering_label(who: str) -> str:
    """Return 'covering for <who> (quiet hours)': why a cover got someone else's alert."""
    return f"covering for {who} ({COVER_REASON})"


def account_label(alert: AlertRequested) -> str:
    """Return the account's name with its domain, or whichever of the two is known."""
    if alert.account_name and alert.account_key:
        return f"{alert.account_name} ({alert.account_key})"
    return alert.account_name or alert.account_key or "Unknown account"
