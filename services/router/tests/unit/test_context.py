from __future__ import annotations

from datetime import timedelta

from tandem_router.domain.context import build_context, content_consumed
from tandem_router.domain.model import EngagementRecord, IntentRecord
from tandem_shared.events import EngagementKind, Signal


def record(i, now, kind=EngagementKind.CONTENT_DOWNLOAD, title=None, name=None):
    return EngagementRecord(
        engagement_id=f"e{i}",
        kind=kind,
        contact=f"p{i % 2}@acme.com",
        content_title=title,
        name=name,
        occurred_at=now - timedelta(hours=i),
    )


def test_context_from_account_state(make):
    now = make.now
    engagements = (
        record(5, now, title="ABM Playbook"),
        record(3, now, kind=EngagementKind.PAGE_VIEW, title="Pricing"),
        record(2, now, title="ABM Playbook"),
        record(1, now, kind=EngagementKind.PAGE_VIEW, name="Home"),
    )
    intents = (
        IntentRecord(
            provider="bombora", topic="CRM", score=50, observed_at=now - timedelta(days=3)
        ),
        IntentRecord(
            provider="bombora", topic="CRM", score=81, observed_at=now - timedelta(days=1)
        ),
        IntentRecord(provider="g2", topic="ABM", score=None, surging=True, observed_at=now),
    )
    state = make.acme(engagements=engagements, intents=intents)
    ctx = build_context(
        state, signal=Signal.INTENT_SURGE, signal_explanation="CRM scored 81", now=now
    )
    assert ctx.research_summary.startswith("Acme Corporation (acme.com), tier 1 target account")
    assert "4 engagements from 2 known people" in ctx.research_summary
    assert ctx.research_summary.endswith("Why now: CRM scored 81.")
    assert [e.occurred_at for e in ctx.engagement_history] == sorted(
        (e.occurred_at for e in engagements), reverse=True
    )
    assert ctx.content_consumed == ["ABM Playbook", "Pricing"]
    assert [(i.topic, i.score) for i in ctx.intent_signals] == [("ABM", None), ("CRM", 81)]
    assert "researching the category" in ctx.suggested_approach
    assert "pricing" in ctx.suggested_approach and "ABM" in ctx.suggested_approach


def test_content_prefers_downloads_names_and_skips_page_names(make):
    now = make.now
    items = [
        record(2, now, name="Webinar: ABM 101", kind=EngagementKind.EVENT_ATTENDANCE),
        record(1, now, kind=EngagementKind.PAGE_VIEW, name="Home"),
    ]
    assert content_consumed(items) == ["Webinar: ABM 101"]


def test_context_without_an_account(make):
    ctx = build_context(
        None, signal=Signal.INBOUND_LEAD, signal_explanation="new lead x@gmail.com", now=make.now
    )
    assert "Unmatched lead" in ctx.research_summary and ctx.engagement_history == []
    assert ctx.suggested_approach.startswith("A new lead came in")
