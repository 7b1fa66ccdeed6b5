"""A year of a mid-size ABM team in the gateway's projection tables, for `make bench-reads`.

Written straight into the read-model tables with `INSERT ... SELECT generate_series` (the
projections' own code would take hours for two million timeline entries), with the shapes the
projections give: handoffs with their SLA clocks (met, breached with or without a late touch,
still running in the last day), an alert per handoff and per breach with deliveries, deals
opened and closed through the year (a few merged or deleted in the CRM), and a timeline per
account skewed towards the busiest accounts. `setseed` makes every run seed the same rows.
Only the base columns are written, so the same seeding runs against any revision of the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

SIGNALS = ("meeting_request", "engagement_spike", "multiple_contacts", "intent_surge")
REPS = 40  # rep-00 .. rep-39
BENCH_REP = "rep-07"


_METRIC_DAYS = ("handoff_days", "handoff_touch_months", "deal_counts", "deal_days")


@dataclass(frozen=True)
class Size:
    """How much a run seeds: a year of a mid-size team, or a tenth of it (--quick)."""

    tal_accounts: int
    other_accounts: int
    handoffs: int
    deals: int
    timeline: int

    @classmethod
    def of(cls, scale: float) -> Size:
        return cls(
            tal_accounts=int(5_000 * scale),
            other_accounts=int(3_000 * scale),
            handoffs=int(100_000 * scale),
            deals=int(20_000 * scale),
            timeline=int(2_000_000 * scale),
        )

    @property
    def accounts(self) -> int:
        return self.tal_accounts + self.other_accounts


def account_key(number: int) -> str:
    """Return the key of the seeded account `number` (1-based)."""
    return f"acct-{number:06d}.com"


# $1 now, $2 accounts, $3 TAL accounts. One in ten TAL accounts is tier 1, three are tier 2;
# one in 97 accounts outside the TAL was merged into a TAL account in the CRM.
_ACCOUNTS = """
INSERT INTO accounts (account_key, name, tier, in_tal, tal_status, ae_id, sdr_id, marketer_id,
    territory, engagement_score, engagement_count, updated_at, merged_into)
SELECT format('acct-%s.com', lpad(i::text, 6, '0')), format('Account %s', i),
    CASE WHEN i % 10 = 0 THEN '1' WHEN i % 10 < 4 THEN '2' WHEN i <= $3 OR i % 2 = 0 THEN '3' END,
    i <= $3, CASE WHEN i <= $3 THEN 'finalized' END,
    format('rep-%s', lpad((i % 40)::text, 2, '0')), format('sdr-%s', i % 10),
    format('mkt-%s', i % 5), format('t-%s', i % 8), 0, 0, $1,
    CASE WHEN i > $3 AND i % 97 = 0
        THEN format('acct-%s.com', lpad((i % $3 + 1)::text, 6, '0')) END
FROM generate_series(1, $2) AS i
"""

# $1 now, $2 handoffs, $3 accounts. Busy accounts get most handoffs (a power law over the
# account numbers, TAL accounts first); SLAs of 1 h, 4 h and 24 h by tier.
_HANDOFFS = """
WITH drawn AS (
    SELECT i, 1 + floor(power(random(), 2.5) * $3)::int AS n,
        $1::timestamptz - random() * interval '365 days' AS t, random() AS s, random() AS u,
        random() AS v, random() AS w, floor(random() * 40)::int AS rep
    FROM generate_series(1, $2) AS i
), facts AS (
    SELECT d.*, a.account_key, a.name, coalesce(a.tier, '3') AS tier, a.in_tal,
        (ARRAY['meeting_request', 'engagement_spike', 'multiple_contacts', 'intent_surge',
               'inbound_lead'])[1 + width_bucket(d.s, ARRAY[0.3, 0.55, 0.7, 0.9])] AS signal,
        CASE coalesce(a.tier, '3') WHEN '1' THEN 3600 WHEN '2' THEN 14400 ELSE 86400 END
            AS allowed,
        CASE WHEN d.t > $1::timestamptz - interval '1 day' AND d.u < 0.6 THEN 'running'
             WHEN d.u < 0.82 THEN 'met' ELSE 'breached' END AS outcome
    FROM drawn d JOIN accounts a ON a.account_key = format('acct-%s.com', lpad(d.n::text, 6, '0'))
), clocks AS (
    SELECT f.*, f.t + f.allowed * interval '1 second' AS deadline,
        CASE WHEN f.outcome = 'met' THEN f.t + f.allowed * f.v * 0.95 * interval '1 second'
             WHEN f.outcome = 'breached' AND f.w < 0.6
                 THEN f.t + f.allowed * (1.05 + 3 * f.v) * interval '1 second' END AS touch
    FROM facts f
)
INSERT INTO handoffs (handoff_id, decision_id, account_key, account_name, tier, in_tal, signal,
    assignee_id, assignee_role, notified_ids, explanation, context, decided_at, sort_at,
    sla_status, sla_outcome, sla_started_at, sla_deadline, sla_allowed_seconds,
    sla_policy_version, outcome_at, first_touch_at, escalation_level)
SELECT 'h-' || i, 'd-' || i, account_key, name, tier, in_tal, signal,
    CASE WHEN w > 0.95 THEN format('mkt-%s', rep % 5)
         ELSE format('rep-%s', lpad(rep::text, 2, '0')) END,
    CASE WHEN w > 0.95 THEN 'marketing' WHEN w > 0.85 THEN 'sdr' ELSE 'ae' END,
    jsonb_build_array(format('mgr-%s', rep % 4)),
    '["TAL tier rule matched", "CRM owner of the account"]'::jsonb,
    jsonb_build_object('engagements', 1 + rep % 7, 'topics', jsonb_build_array('abm')),
    t, t,
    CASE outcome WHEN 'breached' THEN (CASE WHEN v < 0.3 THEN 'escalated' ELSE 'breached' END)
        ELSE outcome END,
    outcome, t, deadline, allowed, 'v1',
    CASE outcome WHEN 'met' THEN touch WHEN 'breached' THEN deadline END,
    touch, CASE WHEN outcome = 'breached' AND v < 0.3 THEN 1 END
FROM clocks
"""

# One alert per handoff to its assignee, one per breach to the assignee and a manager.
_ALERTS = """
INSERT INTO alerts (alert_id, kind, urgency, title, summary, account_key, account_name,
    handoff_id, tier, signal, recipient_ids, channel_ids, requested_at, sort_at)
SELECT 'a-' || h.handoff_id, 'handoff', 'urgent', 'New handoff: ' || h.account_name,
    'Follow up within the SLA', h.account_key, h.account_name, h.handoff_id, h.tier, h.signal,
    jsonb_build_array(h.assignee_id), '["slack"]'::jsonb, h.decided_at, h.decided_at
FROM handoffs h
UNION ALL
SELECT 'b-' || h.handoff_id, 'sla_breach', 'urgent', 'SLA breached: ' || h.account_name,
    'No follow-up before the deadline', h.account_key, h.account_name, h.handoff_id, h.tier,
    h.signal, jsonb_build_array(h.assignee_id) || h.notified_ids, '["slack", "email"]'::jsonb,
    h.outcome_at, h.outcome_at
FROM handoffs h WHERE h.sla_outcome = 'breached'
"""

_DELIVERIES = """
INSERT INTO alert_deliveries (alert_id, recipient_id, channel, status, destination, attempts,
    error, permanent, at)
SELECT a.alert_id, r.person, c.channel,
    CASE WHEN random() < 0.02 THEN 'failed' ELSE 'delivered' END,
    CASE c.channel WHEN 'slack' THEN 'U' || md5(r.person) ELSE r.person || '@example.com' END,
    1, NULL, NULL, a.sort_at + interval '2 seconds'
FROM alerts a
CROSS JOIN LATERAL jsonb_array_elements_text(a.recipient_ids) AS r(person)
CROSS JOIN LATERAL jsonb_array_elements_text(a.channel_ids) AS c(channel)
"""

# $1 now, $2 deals, $3 accounts, $4 TAL accounts: 70 % at TAL accounts, 40 % closed (30 % of
# those won), one in a hundred merged into the next deal, one in a hundred deleted.
_DEALS = """
WITH drawn AS (
    SELECT i, $1::timestamptz - random() * interval '365 days' AS created, random() AS u,
        random() AS v,
        CASE WHEN random() < 0.7 THEN 1 + floor(random() * $4)::int
             ELSE $4 + 1 + floor(random() * ($3 - $4))::int END AS n
    FROM generate_series(1, $2) AS i
)
INSERT INTO deals (deal_id, account_key, name, stage, amount, currency, is_closed, is_won,
    owner_id, created_at, closed_at, updated_at, merged_into, deleted_at)
SELECT 'hubspot:' || i, format('acct-%s.com', lpad(n::text, 6, '0')), 'Deal ' || i,
    CASE WHEN u < 0.4 THEN 'closed' ELSE 'negotiation' END,
    CASE WHEN i % 50 = 0 THEN NULL ELSE round(exp(8 + 4 * v)) END, 'USD', u < 0.4, u < 0.12,
    format('rep-%s', lpad((i % 40)::text, 2, '0')), created,
    CASE WHEN u < 0.4 THEN created + ($1::timestamptz - created) * v END,
    CASE WHEN u < 0.4 THEN created + ($1::timestamptz - created) * v ELSE created END,
    CASE WHEN i % 100 = 0 THEN 'hubspot:' || (i + 1) END,
    CASE WHEN i % 100 = 1 THEN created + interval '1 day' END
FROM drawn
"""

# The handoffs' own entries: routing decisions, SLA starts and verdicts, alerts.
_HANDOFF_TIMELINE = """
INSERT INTO timeline (kind, entry_id, account_key, at, rank, title, actor_id, data)
SELECT 'routing', decision_id, account_key, decided_at, 2,
    format('Handed off to %s (%s, tier %s)', assignee_id, signal, tier), assignee_id,
    jsonb_build_object('handoff_id', handoff_id, 'explanation', explanation)
FROM handoffs
UNION ALL
SELECT 'sla', 's-' || handoff_id, account_key, sla_started_at, 3,
    'SLA started for ' || assignee_id, assignee_id,
    jsonb_build_object('handoff_id', handoff_id, 'deadline', sla_deadline)
FROM handoffs
UNION ALL
SELECT 'sla', 'o-' || handoff_id, account_key, outcome_at, 3,
    format('SLA %s for %s', sla_outcome, assignee_id), assignee_id,
    jsonb_build_object('handoff_id', handoff_id, 'deadline', sla_deadline)
FROM handoffs WHERE outcome_at IS NOT NULL
UNION ALL
SELECT 'alert', alert_id, account_key, sort_at, 4, title, NULL,
    jsonb_build_object('kind', kind, 'urgency', urgency)
FROM alerts
"""

# $1 now, $2 entries, $3 accounts: engagement, sales activity and intent over the year,
# the busiest accounts (a power law, TAL accounts first) getting most.
_ACTIVITY_TIMELINE = """
WITH drawn AS (
    SELECT i, 1 + floor(power(random(), 2) * $3)::int AS n,
        $1::timestamptz - random() * interval '365 days' AS at, random() AS k
    FROM generate_series(1, $2) AS i
)
INSERT INTO timeline (kind, entry_id, account_key, at, rank, title, actor_id, data)
SELECT kind, 'x-' || i, format('acct-%s.com', lpad(n::text, 6, '0')), at, rank, title, actor,
    data
FROM drawn CROSS JOIN LATERAL (
    SELECT * FROM (VALUES
        ('engagement', 1::smallint, 'Whitepaper downloaded by a contact',
         'contact' || (i % 997) || '@example.com',
         jsonb_build_object('source', 'segment', 'kind', 'content_download', 'url', NULL)),
        ('sales_activity', 5::smallint, 'Call', format('rep-%s', lpad((n % 40)::text, 2, '0')),
         jsonb_build_object('crm', 'hubspot', 'kind', 'call')),
        ('intent', 0::smallint, 'Researching ABM on bombora', NULL,
         jsonb_build_object('provider', 'bombora', 'topic', 'ABM', 'score', 70))
    ) AS v(kind, rank, title, actor, data)
    WHERE v.kind = CASE WHEN k < 0.55 THEN 'engagement' WHEN k < 0.8 THEN 'sales_activity'
                        ELSE 'intent' END
) AS chosen
"""

# What the projections keep on the account with each activity entry they add.
_LATEST_ACTIVITY = """
UPDATE accounts a SET last_sales_activity_at = t.sales, last_marketing_activity_at = t.marketing,
    engagement_count = t.engagements, engagement_score = 8 * t.engagements
FROM (
    SELECT account_key, max(at) FILTER (WHERE kind = 'sales_activity') AS sales,
        max(at) FILTER (WHERE kind = 'engagement') AS marketing,
        count(*) FILTER (WHERE kind = 'engagement') AS engagements
    FROM timeline GROUP BY account_key
) t
WHERE t.account_key = a.account_key
"""


async def seed(connection: asyncpg.Connection, size: Size, now: datetime) -> dict[str, int]:
    """Fill the gateway's read models with a year up to `now`; return the row counts."""
    await connection.execute("SELECT setseed(0.16)")
    await connection.execute(_ACCOUNTS, now, size.accounts, size.tal_accounts)
    await connection.execute(_HANDOFFS, now, size.handoffs, size.accounts)
    await connection.execute(_ALERTS)
    await connection.execute(_DELIVERIES)
    await connection.execute(_DEALS, now, size.deals, size.accounts, size.tal_accounts)
    await connection.execute(_HANDOFF_TIMELINE)
    own = await connection.fetchval("SELECT count(*) FROM timeline")
    await connection.execute(_ACTIVITY_TIMELINE, now, max(size.timeline - own, 0), size.accounts)
    await connection.execute(_LATEST_ACTIVITY)
    # Schemas with the per-day metric aggregates (migration 0009) took every seeded row as an
    # update of a few thousand aggregate rows, in one statement; written over a year, autovacuum
    # would have let them reuse their space: compact them to their live rows.
    for table in _METRIC_DAYS:
        if await connection.fetchval("SELECT to_regclass($1)", table):
            await connection.execute(f"VACUUM FULL {table}")
    await connection.execute("VACUUM ANALYZE")
    counts = {}
    for table in ("accounts", "handoffs", "alerts", "alert_deliveries", "deals", "timeline"):
        counts[table] = await connection.fetchval(f"SELECT count(*) FROM {table}")
    return counts
