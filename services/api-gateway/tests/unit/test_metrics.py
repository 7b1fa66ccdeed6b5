"""Alignment metrics over plain facts: ratios, percentiles, filters and the health verdict."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from tandem_api_gateway.domain.errors import InvalidInput
from tandem_api_gateway.domain.metric_definitions import (
    HANDOFF_SUCCESS_RATE,
    JOINT_ACCOUNT_COVERAGE,
    OPEN_SLA_BREACHES,
    MetricDefinition,
)
from tandem_api_gateway.domain.metrics import (
    AccountFacts,
    DealFacts,
    HandoffFacts,
    Health,
    Reading,
    Scope,
    SlaOutcome,
    Team,
    alignment_health,
    alignment_report,
    handoff_success_rate,
    joint_account_coverage,
    percentile,
    pipeline_by_tal,
    sla_compliance,
    time_to_first_touch,
)
from tandem_shared.events import Signal, Tier

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ALL = Scope()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def account(
    key: str,
    *,
    sales: tuple[float, ...] = (),
    marketing: tuple[float, ...] = (),
    in_tal: bool = True,
    tier: Tier = Tier.T1,
) -> AccountFacts:
    return AccountFacts(
        account_key=key,
        tier=tier,
        in_tal=in_tal,
        sales_activity_at=tuple(at(h) for h in sales),
        marketing_activity_at=tuple(at(h) for h in marketing),
    )


def handoff(
    hid: str,
    outcome: SlaOutcome = SlaOutcome.RUNNING,
    *,
    start: float = 0,
    resolved: float | None = None,
    touch: float | None = None,
    tier: Tier = Tier.T1,
    signal: Signal = Signal.MEETING_REQUEST,
    team: Team | None = Team.SALES,
) -> HandoffFacts:
    return HandoffFacts(
        handoff_id=hid,
        tier=tier,
        signal=signal,
        handed_off_at=at(start),
        outcome=outcome,
        outcome_at=None if resolved is None else at(resolved),
        first_touch_at=None if touch is None else at(touch),
        team=team,
    )


def deal(
    did: str,
    *,
    in_tal: bool,
    amount: float | None = 1000.0,
    closed: float | None = None,
    won: bool = False,
    created: float = 0,
    tier: Tier = Tier.T1,
) -> DealFacts:
    return DealFacts(
        deal_id=did,
        tier=tier,
        in_tal=in_tal,
        created_at=at(created),
        amount=amount,
        is_closed=closed is not None,
        is_won=won,
        closed_at=None if closed is None else at(closed),
    )


# ---- empty scopes ------------------------------------------------------------------------


def test_every_ratio_is_none_rather_than_dividing_by_zero() -> None:
    report = alignment_report(accounts=[], handoffs=[], deals=[], scope=ALL)
    assert report.coverage is None
    assert report.handoff_success is None
    assert report.sla.rate is None
    assert report.in_tal.win_rate is None and report.outside_tal.win_rate is None
    assert report.first_touch == ()
    assert report.health.health is Health.UNKNOWN


def test_percentile_of_nothing_is_none_and_of_one_value_is_that_value() -> None:
    assert percentile([], 50) is None
    assert percentile([42.0], 90) == 42.0


@pytest.mark.parametrize("pct", [0, 100])
def test_percentile_outside_1_99_is_refused(pct: int) -> None:
    with pytest.raises(ValueError, match=r"within 1\.\.99"):
        percentile([1.0, 2.0], pct)


def test_percentile_interpolates_between_observations() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 1000.0]
    assert percentile(values, 50) == statistics.median(values)
    p90 = percentile(values, 90)
    assert p90 is not None and 40.0 < p90 < 1000.0


# ---- joint account coverage --------------------------------------------------------------


def test_coverage_needs_both_teams_and_ignores_accounts_outside_the_tal() -> None:
    accounts = [
        account("both.com", sales=(1,), marketing=(2,)),
        account("sales-only.com", sales=(1,)),
        account("marketing-only.com", marketing=(1,)),
        account("idle.com"),
        account("outside.com", sales=(1,), marketing=(1,), in_tal=False),
    ]
    assert joint_account_coverage(accounts, scope=ALL) == pytest.approx(1 / 4)


def test_coverage_team_filter_counts_only_that_teams_activity() -> None:
    accounts = [account("a.com", sales=(1,)), account("b.com", marketing=(1,)), account("c.com")]
    assert joint_account_coverage(accounts, scope=Scope(team=Team.SALES)) == pytest.approx(1 / 3)
    marketing = joint_account_coverage(accounts, scope=Scope(team=Team.MARKETING))
    assert marketing == pytest.approx(1 / 3)


def test_coverage_period_is_half_open_and_applies_to_activity() -> None:
    accounts = [
        account("a.com", sales=(1,), marketing=(5,)),
        account("b.com", sales=(1,), marketing=(2,)),
    ]
    scope = Scope(start=at(0), end=at(5))
    assert joint_account_coverage(accounts, scope=scope) == pytest.approx(1 / 2)


def test_coverage_tier_filter_restricts_the_denominator() -> None:
    accounts = [account("a.com", sales=(1,), marketing=(1,)), account("b.com", tier=Tier.T2)]
    assert joint_account_coverage(accounts, scope=Scope(tier=Tier.T2)) == 0.0
    assert joint_account_coverage(accounts, scope=Scope(tier=Tier.T3)) is None


def test_scope_refuses_an_empty_or_inverted_period() -> None:
    with pytest.raises(InvalidInput, match="end must be after"):
        Scope(start=at(2), end=at(2))


# ---- handoff success and SLA compliance -------------------------------------------------


def test_handoff_success_leaves_running_clocks_out() -> None:
    handoffs = [
        handoff("met", SlaOutcome.MET, resolved=1, touch=1),
        handoff("breached", SlaOutcome.BREACHED, resolved=4),
        handoff("running"),
    ]
    assert handoff_success_rate(handoffs, scope=ALL) == pytest.approx(1 / 2)


def test_handoff_success_counts_the_cohort_sla_compliance_the_verdicts() -> None:
    # Handed off before the period, breached inside it.
    early = handoff("early", SlaOutcome.BREACHED, start=-10, resolved=2)
    late = handoff("late", SlaOutcome.MET, start=1, resolved=3, touch=3)
    scope = Scope(start=at(0), end=at(24))
    assert handoff_success_rate([early, late], scope=scope) == 1.0
    sla = sla_compliance([early, late], scope=scope)
    assert (sla.met, sla.breached, sla.rate) == (1, 1, 0.5)


def test_open_breaches_are_breaches_still_without_a_touch() -> None:
    handoffs = [
        handoff("open", SlaOutcome.BREACHED, resolved=4),
        handoff("late-touch", SlaOutcome.BREACHED, resolved=4, touch=6),
        handoff("met", SlaOutcome.MET, resolved=1, touch=1),
    ]
    assert sla_compliance(handoffs, scope=ALL).open_breaches == 1


def test_handoff_filters_by_tier_and_team() -> None:
    handoffs = [
        handoff("t1", SlaOutcome.MET, resolved=1),
        handoff("t2", SlaOutcome.BREACHED, resolved=1, tier=Tier.T2),
        handoff("mkt", SlaOutcome.BREACHED, resolved=1, team=Team.MARKETING),
    ]
    assert handoff_success_rate(handoffs, scope=Scope(tier=Tier.T2)) == 0.0
    assert handoff_success_rate(handoffs, scope=Scope(tier=Tier.T1, team=Team.SALES)) == 1.0
    assert sla_compliance(handoffs, scope=Scope(team=Team.MARKETING)).breached == 1


# ---- time to first touch -----------------------------------------------------------------


def test_time_to_first_touch_by_tier_and_signal_with_a_tier_rollup() -> None:
    handoffs = [
        handoff("a", touch=1),
        handoff("b", touch=3),
        handoff("c"),  # untouched
        handoff("d", touch=2, signal=Signal.INTENT_SURGE),
        handoff("e", touch=10, tier=Tier.T2),
    ]
    rows = {(r.tier, r.signal): r for r in time_to_first_touch(handoffs, scope=ALL)}
    meeting = rows[Tier.T1, Signal.MEETING_REQUEST]
    assert (meeting.touched, meeting.untouched) == (2, 1)
    assert meeting.median_seconds == statistics.median([3600.0, 3 * 3600.0])
    tier1 = rows[Tier.T1, None]
    assert (tier1.touched, tier1.untouched) == (3, 1)
    assert tier1.median_seconds == 2 * 3600.0
    assert rows[Tier.T2, None].p90_seconds == 10 * 3600.0
    assert set(rows) == {
        (Tier.T1, None),
        (Tier.T1, Signal.MEETING_REQUEST),
        (Tier.T1, Signal.INTENT_SURGE),
        (Tier.T2, None),
        (Tier.T2, Signal.MEETING_REQUEST),
    }


def test_time_to_first_touch_rows_come_tier_first_rollup_first() -> None:
    handoffs = [handoff("x", touch=1, tier=Tier.T2), handoff("y", touch=1)]
    keys = [(r.tier, r.signal) for r in time_to_first_touch(handoffs, scope=ALL)]
    assert keys == [
        (Tier.T1, None),
        (Tier.T1, Signal.MEETING_REQUEST),
        (Tier.T2, None),
        (Tier.T2, Signal.MEETING_REQUEST),
    ]


def test_untouched_group_has_no_times() -> None:
    (row, _) = time_to_first_touch([handoff("a")], scope=ALL)
    assert row.median_seconds is None and row.p90_seconds is None and row.untouched == 1


# ---- pipeline and win rate ---------------------------------------------------------------


def test_pipeline_and_win_rate_inside_vs_outside_the_tal() -> None:
    deals = [
        deal("open-in", in_tal=True, amount=5000),
        deal("won-in", in_tal=True, amount=2000, closed=5, won=True),
        deal("lost-in", in_tal=True, closed=5),
        deal("open-out", in_tal=False, amount=None),
        deal("lost-out", in_tal=False, closed=5),
    ]
    inside, outside = pipeline_by_tal(deals, scope=ALL)
    assert (inside.open_deals, inside.open_amount) == (1, 5000)
    assert (inside.won_amount, inside.win_rate) == (2000, 0.5)
    assert (outside.open_deals, outside.open_amount, outside.win_rate) == (1, 0.0, 0.0)


def test_pipeline_period_uses_creation_and_win_rate_uses_close() -> None:
    deals = [
        deal("old-open", in_tal=True, created=-48),
        deal("closed-now", in_tal=True, created=-48, closed=2, won=True),
    ]
    inside, _ = pipeline_by_tal(deals, scope=Scope(start=at(0), end=at(24)))
    assert inside.open_deals == 0
    assert (inside.closed, inside.win_rate) == (1, 1.0)


# ---- health ------------------------------------------------------------------------------


def test_health_thresholds_per_metric() -> None:
    assert JOINT_ACCOUNT_COVERAGE.rate(0.80) is Health.GREEN
    assert JOINT_ACCOUNT_COVERAGE.rate(0.70) is Health.YELLOW
    assert JOINT_ACCOUNT_COVERAGE.rate(0.59) is Health.RED
    assert OPEN_SLA_BREACHES.rate(0) is Health.GREEN
    assert OPEN_SLA_BREACHES.rate(3) is Health.YELLOW
    assert OPEN_SLA_BREACHES.rate(6) is Health.RED
    assert HANDOFF_SUCCESS_RATE.rate(None) is Health.UNKNOWN


def reading(definition: MetricDefinition, value: float | None) -> Reading:
    return Reading(definition=definition, value=value, health=definition.rate(value))


@pytest.mark.parametrize(
    ("coverage", "success", "expected"),
    [
        (0.9, 0.95, Health.GREEN),
        (0.7, 0.95, Health.YELLOW),
        (0.9, 0.5, Health.RED),
        (0.7, 0.5, Health.RED),
        (None, 0.95, Health.GREEN),
    ],
)
def test_alignment_health_is_the_worst_colour(
    coverage: float | None, success: float, expected: Health
) -> None:
    verdict = alignment_health(
        [reading(JOINT_ACCOUNT_COVERAGE, coverage), reading(HANDOFF_SUCCESS_RATE, success)]
    )
    assert verdict.health is expected
    assert bool(verdict.reasons) == (expected is not Health.GREEN)


def test_red_reasons_come_before_yellow_ones() -> None:
    verdict = alignment_health(
        [reading(JOINT_ACCOUNT_COVERAGE, 0.7), reading(HANDOFF_SUCCESS_RATE, 0.1)]
    )
    assert verdict.reasons[0].startswith("handoff_success_rate is below its red threshold")
    assert verdict.reasons[1].startswith("joint_account_coverage is below target")


def test_report_rates_every_rated_metric_and_reaches_a_verdict() -> None:
    accounts = [account("a.com", sales=(1,), marketing=(1,)), account("b.com")]
    handoffs = [handoff(f"h{i}", SlaOutcome.BREACHED, resolved=1) for i in range(6)]
    report = alignment_report(accounts=accounts, handoffs=handoffs, deals=[], scope=ALL)
    colours = {r.definition.name: r.health for r in report.readings}
    assert colours == {
        "joint_account_coverage": Health.RED,
        "handoff_success_rate": Health.RED,
        "sla_compliance": Health.RED,
        "open_sla_breaches": Health.RED,
    }
    assert report.health.health is Health.RED
    assert len(report.health.reasons) == 4


def test_no_open_breaches_without_resolved_clocks_is_no_data_not_green() -> None:
    report = alignment_report(accounts=[], handoffs=[handoff("running")], deals=[], scope=ALL)
    (breaches,) = [r for r in report.readings if r.definition is OPEN_SLA_BREACHES]
    assert breaches.value is None and breaches.health is Health.UNKNOWN
