from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tandem_router.config import check, load_rules
from tandem_router.domain.rules import RulesError, parse_rules
from tandem_shared.directory import load_directory
from tandem_shared.events import Signal, Tier, Urgency

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "example"


def problems_of(doc) -> list[str]:
    with pytest.raises(RulesError) as info:
        parse_rules(doc)
    return info.value.problems


def test_the_example_rule_set_is_valid_against_the_example_directory():
    directory = load_directory(EXAMPLE / "people.yaml")
    assert check(EXAMPLE / "routing.yaml", directory) == []
    rules = load_rules(EXAMPLE / "routing.yaml")
    assert rules.pool_for("na-central") == "na-sdrs"
    assert rules.pool_for("emea") == "emea-sdrs"
    assert rules.pool_for("na-west") == "na-west-sdrs"
    assert set(rules.pools[rules.default_pool].members) == {"dan.sdr", "eve.sdr", "finn.sdr"}
    assert rules.marketing_channel == "abm-marketing"
    assert rules.out_of_office_cover


def test_defaults_and_lookups(rules):
    assert rules.pool_for(None) == "all-sdrs"
    assert rules.pool_for("apac") == "all-sdrs"
    assert rules.urgency_for(Tier.T1, Signal.MEETING_REQUEST) == Urgency.URGENT
    assert rules.urgency_for(Tier.T3, Signal.INBOUND_LEAD) == Urgency.NORMAL
    assert rules.signals.rule(Signal.ENGAGEMENT_SPIKE).cooldown.days == 7


def test_extra_fields_are_forbidden_with_their_path(make):
    doc = make.rules_doc(pools={"all-sdrs": {"members": ["dan.sdr"], "weights": [1]}})
    assert "pools.all-sdrs.weights: Extra inputs are not permitted" in problems_of(doc)


def test_version_format(make):
    [problem] = problems_of(make.rules_doc(version="v2"))
    assert problem.startswith("version: String should match pattern")


def test_every_problem_is_listed(make):
    doc = make.rules_doc(
        fuzzy_threshold=1.5,
        tiers={"1": {"route": "nobody"}},
        signals={"intent_surge": {"score_threshold": 150}},
    )
    problems = problems_of(doc)
    assert any(p.startswith("fuzzy_threshold:") for p in problems)
    assert any(p.startswith("tiers.1.route:") for p in problems)
    assert any(p.startswith("signals.intent_surge.score_threshold:") for p in problems)


def test_cross_field_checks(make):
    assert any(
        "missing tier(s) ['3']" in p
        for p in problems_of(make.rules_doc(tiers={"1": {"route": "ae"}, "2": {"route": "sdr"}}))
    )
    assert any("unknown pool 'nope'" in p for p in problems_of(make.rules_doc(default_pool="nope")))
    pools = make.rules_doc()["pools"] | {"extra": {"members": ["eve.sdr"], "territories": ["emea"]}}
    assert any("'emea' is already served" in p for p in problems_of(make.rules_doc(pools=pools)))
    short = {"window": "P1D"}
    assert any("retention.window" in p for p in problems_of(make.rules_doc(retention=short)))


def test_check_cross_checks_the_directory(tmp_path, make, directory):
    doc = make.rules_doc(escalation_manager_id="nobody", marketing_channel="#nope")
    doc["pools"]["all-sdrs"]["members"] = ["dan.sdr", "ghost.sdr", "mia.marketing"]
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert check(path, directory) == [
        "pools.all-sdrs.members.1: unknown person 'ghost.sdr'",
        "pools.all-sdrs.members.2: 'mia.marketing' is a marketer, not a rep",
        "escalation_manager_id: unknown person 'nobody'",
        "marketing_channel: unknown channel '#nope'",
    ]


def test_check_reports_bad_yaml_and_missing_files(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("version: [unclosed")
    [problem] = check(path)
    assert "not valid YAML" in problem
    [missing] = check(tmp_path / "absent.yaml")
    assert "cannot read" in missing


def test_rule_set_round_trips_through_json(rules):
    assert type(rules).model_validate_json(rules.model_dump_json()) == rules


def test_signal_windows_must_be_positive_and_cooldowns_not_negative(make):
    signals = {
        "engagement_spike": {"baseline": "PT0S"},
        "multiple_contacts": {"window": "-P1D"},
        "meeting_request": {"cooldown": "-PT1H"},
    }
    problems = problems_of(make.rules_doc(signals=signals))
    assert any(
        p.startswith("signals.engagement_spike.baseline: Input should be greater") for p in problems
    )
    assert any(
        p.startswith("signals.multiple_contacts.window: Input should be greater") for p in problems
    )
    assert any(
        p.startswith("signals.meeting_request.cooldown: Input should be greater") for p in problems
    )
    # a zero cool-down is allowed: every meeting request alerts
    assert (
        make.rules(
            signals={"meeting_request": {"cooldown": "PT0S"}}
        ).signals.meeting_request.cooldown.total_seconds()
        == 0
    )
