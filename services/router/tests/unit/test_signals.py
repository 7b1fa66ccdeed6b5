from __future__ import annotations

from datetime import timedelta

from tandem_router.domain.model import IntentRecord
from tandem_router.domain.rules import SignalRules
from tandem_router.domain.signals import (
    detect_engagement_spike,
    detect_inbound_lead,
    detect_intent_surge,
    detect_meeting_request,
    detect_multiple_contacts,
    in_cooldown,
    scan,
)
from tandem_shared.events import EngagementKind, Signal

DAY = timedelta(days=1)
RULES = SignalRules()  # defaults: spike 7d vs 28d x3 min 5, contacts 14d >= 3, intent 70 / +15


def test_meeting_request_fires_immediately(make):
    hit = detect_meeting_request(
        make.engagement(EngagementKind.MEETING_REQUEST), None, RULES, make.now
    )
    assert (
        hit.signal == Signal.MEETING_REQUEST
        and "jo@acme.com requested a meeting" in hit.explanation
    )
    assert detect_meeting_request(make.engagement(), None, RULES, make.now) is None


def test_engagement_spike_against_the_baseline(make):
    quiet = make.history(4, start=make.now - 30 * DAY, step=5 * DAY)  # ~1 per 7 days before
    busy = make.history(4, start=make.now - 3 * DAY, step=DAY / 2)
    state = make.acme(engagements=quiet + busy)
    hit = detect_engagement_spike(make.engagement(), state, RULES, make.now)
    assert hit is not None and hit.explanation.startswith("5 engagements in the last 7 days")


def test_no_spike_below_min_count_or_ratio(make):
    few = make.acme(engagements=make.history(3, start=make.now - 2 * DAY, step=DAY / 2))
    assert detect_engagement_spike(make.engagement(), few, RULES, make.now) is None
    steady = make.history(24, start=make.now - 34 * DAY, step=DAY * 34 / 24)  # ~5 per week
    assert (
        detect_engagement_spike(make.engagement(), make.acme(engagements=steady), RULES, make.now)
        is None
    )


def test_spike_with_no_baseline_needs_only_min_count(make):
    state = make.acme(engagements=make.history(4, start=make.now - DAY, step=DAY / 8))
    assert detect_engagement_spike(make.engagement(), state, RULES, make.now) is not None


def test_multiple_contacts_counts_distinct_people_in_the_window(make):
    two = make.history(6, start=make.now - 5 * DAY, step=DAY / 2, contacts=2)  # p0, p1
    state = make.acme(engagements=two)
    assert (
        detect_multiple_contacts(make.engagement(email="p1@acme.com"), state, RULES, make.now)
        is None
    )
    hit = detect_multiple_contacts(make.engagement(email="jo@acme.com"), state, RULES, make.now)
    assert hit.explanation == "3 different people engaged in the last 14 days"
    old = make.acme(engagements=make.history(4, start=make.now - 30 * DAY, step=DAY, contacts=4))
    assert detect_multiple_contacts(make.engagement(), old, RULES, make.now) is None


def test_intent_surge_by_threshold_jump_and_vendor_flag(make):
    assert detect_intent_surge(make.intent(72), None, RULES, make.now).explanation.endswith(
        "scored 72 (threshold 70)"
    )
    assert detect_intent_surge(make.intent(55), None, RULES, make.now) is None
    earlier = IntentRecord(
        provider="bombora", topic="CRM Software", score=40, observed_at=make.now - 7 * DAY
    )
    state = make.acme(intents=(earlier,))
    jump = detect_intent_surge(make.intent(58), state, RULES, make.now)
    assert jump.explanation.endswith("jumped from 40 to 58")
    other_topic = detect_intent_surge(make.intent(58, topic="ERP"), state, RULES, make.now)
    assert other_topic is None
    flagged = make.intent(None, provider="clearbit", surging=True, entered=True)
    assert detect_intent_surge(flagged, None, RULES, make.now) is not None
    ignore_flag = SignalRules(intent_surge={"honor_vendor_surge": False})
    assert detect_intent_surge(flagged, None, ignore_flag, make.now) is None
    exited = make.intent(90, entered=False)
    assert detect_intent_surge(exited, None, RULES, make.now) is None


def test_inbound_lead_only_for_new_leads(make):
    state = make.acme(known_contacts=("old@acme.com",))
    assert detect_inbound_lead(make.lead("new@acme.com"), state, RULES, make.now) is not None
    assert detect_inbound_lead(make.lead("OLD@acme.com"), state, RULES, make.now) is None
    contact = make.lead("x@acme.com").model_copy(update={"is_lead": False})
    assert detect_inbound_lead(contact, state, RULES, make.now) is None
    form = make.engagement(EngagementKind.FORM_FILL, email="new@acme.com", name="Demo form")
    assert "filled in Demo form" in detect_inbound_lead(form, state, RULES, make.now).explanation
    crm_only = SignalRules(inbound_lead={"sources": ["crm_lead"]})
    assert detect_inbound_lead(form, state, crm_only, make.now) is None


def test_disabled_detectors_stay_quiet(make):
    off = SignalRules(meeting_request={"enabled": False}, intent_surge={"enabled": False})
    assert (
        detect_meeting_request(make.engagement(EngagementKind.MEETING_REQUEST), None, off, make.now)
        is None
    )
    assert detect_intent_surge(make.intent(99), None, off, make.now) is None


def test_cooldown_is_one_alert_per_signal_per_account(make):
    meeting = make.engagement(EngagementKind.MEETING_REQUEST)
    just_alerted = make.acme(last_alerts={Signal.MEETING_REQUEST: make.now - timedelta(minutes=30)})
    result = scan(meeting, state=just_alerted, rules=RULES, now=make.now)
    assert result.fired == () and [d.signal for d in result.suppressed] == [Signal.MEETING_REQUEST]
    later = make.now + timedelta(minutes=31)
    assert not in_cooldown(just_alerted, Signal.MEETING_REQUEST, RULES, later)
    assert scan(meeting, state=just_alerted, rules=RULES, now=later).fired[0].signal == (
        Signal.MEETING_REQUEST
    )
    other_signal = make.acme(last_alerts={Signal.INTENT_SURGE: make.now})
    assert scan(meeting, state=other_signal, rules=RULES, now=make.now).fired


def test_scan_orders_by_strength(make):
    state = make.acme(engagements=make.history(6, start=make.now - DAY, step=DAY / 12, contacts=3))
    meeting = make.engagement(EngagementKind.MEETING_REQUEST, email="boss@acme.com")
    fired = [d.signal for d in scan(meeting, state=state, rules=RULES, now=make.now).fired]
    assert fired == [Signal.MEETING_REQUEST, Signal.ENGAGEMENT_SPIKE, Signal.MULTIPLE_CONTACTS]
