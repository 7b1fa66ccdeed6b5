"""Handoff signal detectors: each looks at the account's history before an event and the event.

Detectors are pure and independent; `scan` runs them all, orders the hits by strength and splits
off those still in their cool-down (one alert per signal per account per cool-down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tandem_router.domain.apply import RouterEvent, contact_identity
from tandem_router.domain.model import AccountState
from tandem_router.domain.rules import SignalRules
from tandem_shared.events import (
    ContactUpserted,
    EngagementKind,
    EngagementRecorded,
    IntentObserved,
    Signal,
)

# Strongest first: when one event fires several signals the handoff carries the first.
PRIORITY = (
    Signal.MEETING_REQUEST,
    Signal.INTENT_SURGE,
    Signal.ENGAGEMENT_SPIKE,
    Signal.MULTIPLE_CONTACTS,
    Signal.INBOUND_LEAD,
)


@dataclass(frozen=True)
class DetectedSignal:
    signal: Signal
    explanation: str


@dataclass(frozen=True)
class SignalScan:
    """Signals an event fires (strongest first) and those held back by a cool-down."""

    fired: tuple[DetectedSignal, ...] = ()
    suppressed: tuple[DetectedSignal, ...] = ()


Detector = Callable[
    [RouterEvent, AccountState | None, SignalRules, datetime], DetectedSignal | None
]


def detect_meeting_request(
    event: RouterEvent, state: AccountState | None, rules: SignalRules, now: datetime
) -> DetectedSignal | None:
    """Fire on any meeting request: it is acted on at once."""
    if not rules.meeting_request.enabled:
        return None
    if isinstance(event, EngagementRecorded) and event.kind == EngagementKind.MEETING_REQUEST:
        who = contact_identity(event) or "an anonymous visitor"
        return DetectedSignal(Signal.MEETING_REQUEST, f"{who} requested a meeting")
    return None


def detect_engagement_spike(
    event: RouterEvent, state: AccountState | None, rules: SignalRules, now: datetime
) -> DetectedSignal | None:
    """Fire when engagements in the window reach min_count and ratio x the baseline rate."""
    rule = rules.engagement_spike
    if not rule.enabled or not isinstance(event, EngagementRecorded):
        return None
    history = state.engagements if state else ()
    window_start = now - rule.window
    baseline_start = window_start - rule.baseline
    recent = 1 + sum(1 for e in history if e.occurred_at > window_start)
    baseline = sum(1 for e in history if baseline_start < e.occurred_at <= window_start)
    expected = baseline * (rule.window / rule.baseline)
    if recent < rule.min_count or recent < rule.ratio * expected:
        return None
    days = rule.window.total_seconds() / 86400
    why = (
        f"{recent} engagements in the last {days:g} days against {expected:.1f} expected from "
        f"the baseline (threshold {rule.ratio:g}x and at least {rule.min_count})"
    )
    return DetectedSignal(Signal.ENGAGEMENT_SPIKE, why)


def detect_multiple_contacts(
    event: RouterEvent, state: AccountState | None, rules: SignalRules, now: datetime
) -> DetectedSignal | None:
    """Fire when at least min_contacts distinct people engaged within the window."""
    rule = rules.multiple_contacts
    if not rule.enabled or not isinstance(event, EngagementRecorded):
        return None
    start = now - rule.window
    history = state.engagements if state else ()
    contacts = {e.contact for e in history if e.occurred_at > start and e.contact}
    current = contact_identity(event)
    if current:
        contacts.add(current)
    if len(contacts) < rule.min_contacts:
        return None
    days = rule.window.total_seconds() / 86400
    why = f"{len(contacts)} different people engaged in the last {days:g} days"
    return DetectedSignal(Signal.MULTIPLE_CONTACTS, why)


def detect_intent_surge(
    event: RouterEvent, state: AccountState | None, rules: SignalRules, now: datetime
) -> DetectedSignal | None:
    """Fire on a vendor surge flag, a score at the threshold, or a jump since the last reading."""
    rule = rules.intent_surge
    if not rule.enabled or not isinstance(event, IntentObserved) or event.entered is False:
        return None
    topic = f"{event.topic!r} ({event.provider})"
    if event.score is not None:
        previous = _previous_score(state, event)
        if previous is not None and event.score - previous >= rule.jump:
            why = f"intent on {topic} jumped from {previous:g} to {event.score:g}"
            return DetectedSignal(Signal.INTENT_SURGE, why)
        if event.score >= rule.score_threshold:
            why = f"intent on {topic} scored {event.score:g} (threshold {rule.score_threshold:g})"
            return DetectedSignal(Signal.INTENT_SURGE, why)
    if rule.honor_vendor_surge and event.surging:
        return DetectedSignal(Signal.INTENT_SURGE, f"{event.provider} reports a surge on {topic}")
    return None


def detect_inbound_lead(
    event: RouterEvent, state: AccountState | None, rules: SignalRules, now: datetime
) -> DetectedSignal | None:
    """Fire on a new lead: a CRM lead or a form fill by someone the account has not seen."""
    rule = rules.inbound_lead
    if not rule.enabled:
        return None
    known = set(state.known_contacts) if state else set()
    if isinstance(event, ContactUpserted) and event.is_lead and "crm_lead" in rule.sources:
        email = (event.email or "").strip().lower()
        if email and email not in known:
            return DetectedSignal(Signal.INBOUND_LEAD, f"new lead {email} in the CRM")
    if (
        isinstance(event, EngagementRecorded)
        and event.kind == EngagementKind.FORM_FILL
        and "form_fill" in rule.sources
    ):
        email = (event.contact_email or "").strip().lower()
        if email and email not in known:
            form = event.content_title or event.name or "a form"
            return DetectedSignal(Signal.INBOUND_LEAD, f"new lead {email} filled in {form}")
    return None


DETECTORS: dict[Signal, Detector] = {
    Signal.MEETING_REQUEST: detect_meeting_request,
    Signal.INTENT_SURGE: detect_intent_surge,
    Signal.ENGAGEMENT_SPIKE: detect_engagement_spike,
    Signal.MULTIPLE_CONTACTS: detect_multiple_contacts,
    Signal.INBOUND_LEAD: detect_inbound_lead,
}


def in_cooldown(
    state: AccountState | None, signal: Signal, rules: SignalRules, now: datetime
) -> bool:
    """Return True when the account was alerted for this signal within its cool-down."""
    last = state.last_alerts.get(signal) if state else None
    return last is not None and now - last < rules.rule(signal).cooldown


def scan(
    event: RouterEvent, *, state: AccountState | None, rules: SignalRules, now: datetime
) -> SignalScan:
    """Run every detector on the event against the account's history before it."""
    hits = [d for s in PRIORITY if (d := DETECTORS[s](event, state, rules, now)) is not None]
    fired = tuple(d for d in hits if not in_cooldown(state, d.signal, rules, now))
    suppressed = tuple(d for d in hits if d not in fired)
    return SignalScan(fired=fired, suppressed=suppressed)


def _previous_score(state: AccountState | None, event: IntentObserved) -> float | None:
    if state is None:
        return None
    earlier = [
        i
        for i in state.intents
        if i.provider == event.provider
        and i.topic == event.topic
        and i.score is not None
        and i.observed_at < event.observed_at
    ]
    return max(earlier, key=lambda i: i.observed_at).score if earlier else None
