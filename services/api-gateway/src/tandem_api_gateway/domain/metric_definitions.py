"""The alignment metrics' definitions as data: what each means, its formula, target, thresholds.

The API returns a definition next to each number and docs/metrics.md is generated from
`render_markdown()`, so the words never drift from the arithmetic in `metrics.py`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum


class Health(StrEnum):
    """Traffic light of a metric or of alignment as a whole."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    UNKNOWN = "unknown"  # no data in scope: neither good nor bad news


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Unit(StrEnum):
    RATIO = "ratio"  # 0..1, shown as a percentage
    COUNT = "count"
    SECONDS = "seconds"
    AMOUNT = "amount"  # money, in the CRM's reporting currency


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """A metric's meaning; `target` and `red` are None for metrics shown without a colour."""

    name: str
    title: str
    description: str
    formula: str
    unit: Unit
    direction: Direction = Direction.HIGHER_IS_BETTER
    target: float | None = None  # meets the target (green) at this value or better
    red: float | None = None  # strictly worse than this is red; between the two is yellow
    when_empty: str = "no value (null), never a division by zero"

    @property
    def rated(self) -> bool:
        """Return True when the metric has thresholds and takes part in alignment health."""
        return self.target is not None and self.red is not None

    def rate(self, value: float | None) -> Health:
        """Return the colour of a value against this metric's thresholds."""
        if value is None or self.target is None or self.red is None:
            return Health.UNKNOWN
        if self.direction is Direction.HIGHER_IS_BETTER:
            if value >= self.target:
                return Health.GREEN
            return Health.RED if value < self.red else Health.YELLOW
        if value <= self.target:
            return Health.GREEN
        return Health.RED if value > self.red else Health.YELLOW


JOINT_ACCOUNT_COVERAGE = MetricDefinition(
    name="joint_account_coverage",
    title="Joint account coverage",
    description=(
        "Share of target accounts (TAL) that both teams worked in the period: at least one "
        "sales activity (call, email, meeting, task or note logged in the CRM) and at least "
        "one marketing engagement. With a team filter, only that team's activity is required."
    ),
    formula="TAL accounts with sales AND marketing activity in the period / TAL accounts",
    unit=Unit.RATIO,
    target=0.80,
    red=0.60,
)
HANDOFF_SUCCESS_RATE = MetricDefinition(
    name="handoff_success_rate",
    title="Handoff success rate",
    description=(
        "Share of handoffs made in the period whose first qualifying follow-up happened within "
        "the SLA, as the SLA monitor judged it (in the assignee's business hours). Counted on "
        "the handoff's cohort (when it was handed off); handoffs whose clock is still running "
        "are left out until their outcome is known."
    ),
    formula="handoffs handed off in the period with SLA met / those with SLA met or breached",
    unit=Unit.RATIO,
    target=0.90,
    red=0.75,
)
SLA_COMPLIANCE = MetricDefinition(
    name="sla_compliance",
    title="SLA compliance",
    description=(
        "Share of SLA verdicts reached in the period that were met: the SLA monitor's ledger "
        "view, counted when the clock resolved rather than when the handoff was made, so it "
        "reflects this period's follow-up work."
    ),
    formula="SLA clocks met in the period / (met + breached in the period)",
    unit=Unit.RATIO,
    target=0.90,
    red=0.75,
)
OPEN_SLA_BREACHES = MetricDefinition(
    name="open_sla_breaches",
    title="Open SLA breaches",
    description=(
        "Handoffs whose SLA breached and that still have no follow-up: each is an account "
        "marketing warmed up that nobody has called. Breaches from the period, current state."
    ),
    formula="count of breached handoffs without a first touch",
    unit=Unit.COUNT,
    direction=Direction.LOWER_IS_BETTER,
    target=0,
    red=5,
    when_empty="no value (null) when no SLA clock resolved in scope: zero of nothing is no news",
)
TIME_TO_FIRST_TOUCH = MetricDefinition(
    name="time_to_first_touch",
    title="Time to first touch",
    description=(
        "Wall-clock time from handoff to the first qualifying sales follow-up, by tier and "
        "signal: the median and the 90th percentile (statistics.quantiles, inclusive method: "
        "linear interpolation between the observed values). Untouched handoffs are left out "
        "and counted separately."
    ),
    formula="median and p90 of (first touch time - handoff time) over touched handoffs",
    unit=Unit.SECONDS,
    direction=Direction.LOWER_IS_BETTER,
)
PIPELINE_IN_TAL = MetricDefinition(
    name="pipeline_in_tal",
    title="Open pipeline inside the TAL",
    description=(
        "Amount of open deals at TAL accounts created in the period, summed as the CRM reports "
        "them (one reporting currency is assumed; a deal without an amount counts as 0)."
    ),
    formula="sum of amounts of open deals at TAL accounts",
    unit=Unit.AMOUNT,
    when_empty="0",
)
PIPELINE_OUTSIDE_TAL = MetricDefinition(
    name="pipeline_outside_tal",
    title="Open pipeline outside the TAL",
    description=(
        "Amount of open deals at accounts outside the TAL created in the period, summed the "
        "same way as inside the TAL."
    ),
    formula="sum of amounts of open deals at accounts outside the TAL",
    unit=Unit.AMOUNT,
    when_empty="0",
)
WIN_RATE_IN_TAL = MetricDefinition(
    name="win_rate_in_tal",
    title="Win rate inside the TAL",
    description="Share of deals at TAL accounts closed in the period that were won.",
    formula="won deals / closed deals, at TAL accounts (deals deleted in the CRM not counted)",
    unit=Unit.RATIO,
)
WIN_RATE_OUTSIDE_TAL = MetricDefinition(
    name="win_rate_outside_tal",
    title="Win rate outside the TAL",
    description=(
        "Share of deals at accounts outside the TAL closed in the period that were won: the "
        "baseline the TAL's win rate is compared with."
    ),
    formula=(
        "won deals / closed deals, at accounts outside the TAL (deals deleted in the CRM not "
        "counted)"
    ),
    unit=Unit.RATIO,
)

DEFINITIONS: tuple[MetricDefinition, ...] = (
    JOINT_ACCOUNT_COVERAGE,
    HANDOFF_SUCCESS_RATE,
    SLA_COMPLIANCE,
    OPEN_SLA_BREACHES,
    TIME_TO_FIRST_TOUCH,
    PIPELINE_IN_TAL,
    PIPELINE_OUTSIDE_TAL,
    WIN_RATE_IN_TAL,
    WIN_RATE_OUTSIDE_TAL,
)

HEALTH_RULE = (
    "Alignment health is red when any rated metric is worse than its red threshold, yellow "
    "when any misses its target, green when every rated metric with data meets its target, "
    "and unknown when no rated metric has data in scope. Metrics without data are ignored."
)


def definition(name: str) -> MetricDefinition:
    """Return the definition of the metric with this name."""
    for item in DEFINITIONS:
        if item.name == name:
            return item
    raise KeyError(f"unknown metric {name!r}")


def render_markdown() -> str:
    """Return docs/metrics.md: every metric's definition, formula, target and thresholds."""
    lines = [
        "# Alignment metrics",
        "",
        "<!-- Generated from services/api-gateway/src/tandem_api_gateway/domain/"
        "metric_definitions.py; edit the code, not this file, then run "
        "`python -m tandem_api_gateway.domain.metric_definitions > docs/metrics.md` -->",
        "",
        "The numbers sales and marketing share, from `GET /v1/metrics/alignment`. Every metric "
        "can be filtered by period (`period=7d|30d|90d|365d|all`, default `30d`, ending now or "
        "at `end`; or `start` inclusive and `end` exclusive, ISO 8601 with a time zone), `tier` "
        "(1, 2 or 3) and `team` (sales or marketing); the API returns each value with the "
        "definition below.",
        "",
        "Filters: the period applies to the moment each fact happened (activity, handoff, SLA "
        "verdict, deal creation or close). The team filter keeps the facts of that team: for "
        "coverage it counts only that team's activity; for handoffs and SLA clocks, handoffs "
        "assigned to that team; for deals, deals owned by that team.",
        "",
        "Merged CRM records: a deal or account merged into another in the CRM counts once, as "
        "the record that survived the merge; the merged-away one leaves every metric.",
        "",
    ]
    for item in DEFINITIONS:
        lines += [
            f"## {item.title} (`{item.name}`)",
            "",
            item.description,
            "",
            f"- Formula: {item.formula}",
            f"- Unit: {item.unit.value}",
            f"- Target: {_threshold_text(item)}",
            f"- Empty scope: {item.when_empty}.",
            "",
        ]
    lines += ["## Alignment health", "", HEALTH_RULE, "", *_COMPUTED]
    return "\n".join(lines)


# How the gateway answers, for docs/metrics.md (details in docs/runbook.md).
_COMPUTED = [
    "## How the gateway computes them",
    "",
    "PostgreSQL computes every metric per request; no fact is loaded into the gateway. Handoffs "
    "and deals are counted per UTC day in tables that triggers keep in the same transaction as "
    "each write to a handoff, deal or account: `handoff_days` (handoffs made, touched, met and "
    "resolved, and SLA verdicts reached, per day, tier, signal and team), `deal_days` (deals "
    "opened and closed, won, and their exact amounts, per day, tier and TAL membership) and "
    "`deal_counts` (what each deal was counted as, so a change of its account's tier, TAL "
    "membership or merge takes back exactly what the deal had added). A period reads its whole "
    "days from these tables and the partial days at its edges (a named period starts at the "
    "current time of day) from the rows themselves: the numbers equal the definitions above for "
    "any period, tier and team.",
    "",
    "Percentiles cannot be added up day by day, but the ranks they lie between can be found "
    "from counts: `handoff_touch_months` counts touched handoffs per UTC month, tier, signal, "
    "team and bucket of touch time (an eighth of a doubling of seconds, buckets numbered in "
    "value order), kept by a trigger like the per-day tables. A period adds up its whole "
    "months' buckets and counts its partial months' touch times from the rows, which tells the "
    "bucket that holds each order statistic and the rank inside it; only those buckets' touch "
    "times in the period are read (an index by tier, bucket and handoff time), sorted, and the "
    "exact values picked: the median and p90 equal the definition's, bit for bit (a period "
    "without a whole month sorts its own touch times), in the snapshot of the counts. Coverage "
    "reads each account's latest activity for periods without an end, else probes the "
    "timeline once per TAL account. A rebuild empties the aggregates with the read models and "
    "the replay counts them again.",
    "",
]


def _threshold_text(item: MetricDefinition) -> str:
    if item.target is None or item.red is None:
        return "none (shown for context, not rated)"
    better, worse = (">=", "<") if item.direction is Direction.HIGHER_IS_BETTER else ("<=", ">")
    return (
        f"green {better} {_show(item, item.target)}; red {worse} {_show(item, item.red)}; "
        "yellow in between"
    )


def _show(item: MetricDefinition, value: float) -> str:
    return f"{value:.0%}" if item.unit is Unit.RATIO else f"{value:g}"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
