from __future__ import annotations

from pathlib import Path

import pytest

from tandem_shared.events import Signal, Tier
from tandem_sla_monitor.domain.policy import (
    DEFAULT_TARGETS,
    EscalationTarget,
    PolicyError,
    PolicyTerms,
    SlaPolicy,
    parse_policy,
)

EXAMPLE = Path(__file__).parents[4] / "config" / "example" / "sla.yaml"


def test_defaults_cover_every_signal_and_tier() -> None:
    policy = SlaPolicy(version="v1")
    assert {(s, t) for s, row in policy.targets.items() for t in row} == {
        (s, t) for s in Signal for t in Tier
    }
    assert policy.allowed_minutes(Tier.T1, Signal.MEETING_REQUEST) == 15
    assert policy.allowed_minutes(Tier.T3, Signal.INBOUND_LEAD) == 8 * 60
    assert policy.warning_share == 0.75


def test_faster_follow_up_for_higher_tiers() -> None:
    policy = SlaPolicy(version="v1")
    for signal in Signal:
        minutes = [policy.allowed_minutes(tier, signal) for tier in (Tier.T1, Tier.T2, Tier.T3)]
        assert minutes == sorted(minutes), signal


def test_example_config_loads() -> None:
    policy = parse_policy(EXAMPLE.read_text(encoding="utf-8"))
    assert policy.version
    assert [step.notify for step in policy.escalation] == [
        EscalationTarget.ASSIGNEE,
        EscalationTarget.MANAGER,
        EscalationTarget.LEADERSHIP,
    ]
    assert policy.escalation[2].channel_ids == ("sales-leadership",)


def test_partial_matrix_takes_defaults_for_missing_cells() -> None:
    policy = parse_policy("version: v2\ntargets:\n  meeting_request: {1: 5}\n")
    assert policy.allowed_minutes(Tier.T1, Signal.MEETING_REQUEST) == 5
    default_t2 = DEFAULT_TARGETS[Signal.MEETING_REQUEST][Tier.T2]
    assert policy.allowed_minutes(Tier.T2, Signal.MEETING_REQUEST) == default_t2


def test_terms_snapshot_the_applicable_cell() -> None:
    policy = SlaPolicy(version="v7", warning_share=0.5, reassign_on_breach=True)
    terms = policy.terms_for(Tier.T2, Signal.INTENT_SURGE)
    assert terms.policy_version == "v7"
    assert terms.allowed_seconds == policy.allowed_minutes(Tier.T2, Signal.INTENT_SURGE) * 60
    assert terms.warning_seconds == terms.allowed_seconds // 2
    assert terms.reassign_on_breach
    assert terms.acknowledgement_pause_seconds == 120 * 60
    assert PolicyTerms.model_validate_json(terms.model_dump_json()) == terms


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("version: v1\nwarn_share: 0.5\n", "warn_share"),
        ("version: v1\ntargets:\n  cold_call: {1: 10}\n", "cold_call"),
        ("version: v1\ntargets:\n  meeting_request: {4: 10}\n", "meeting_request.4"),
        ("version: v1\ntargets:\n  meeting_request: {1: 0}\n", "meeting_request.1"),
        ("version: v1\nwarning_share: 1.2\n", "warning_share"),
        ("warning_share: 0.5\n", "version"),
        (
            "version: v1\nescalation:\n"
            "  - {notify: manager, after_breach_minutes: 60}\n"
            "  - {notify: leadership, after_breach_minutes: 30}\n",
            "strictly increasing",
        ),
        ("version: v1\nescalation:\n  - {notify: ceo, after_breach_minutes: 1}\n", "notify"),
        ("version: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "must be a mapping"),
    ],
)
def test_invalid_documents_fail_with_a_clear_error(document: str, complaint: str) -> None:
    with pytest.raises(PolicyError, match=complaint.replace(".", r"\.")):
        parse_policy(document)
