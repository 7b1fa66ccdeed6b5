"""The gateway's tables as SQLAlchemy Core objects (created by migration 0002)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from tandem_shared.availability import people_availability

metadata = sa.MetaData()

_TS = sa.DateTime(timezone=True)


def _jsonb(name: str, default: str) -> sa.Column[object]:
    return sa.Column(name, JSONB, nullable=False, server_default=sa.text(f"'{default}'::jsonb"))


# ---- read models: projections of the topics, truncated and rebuilt by `rebuild` -------------

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_key", sa.Text, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("in_tal", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("tal_status", sa.Text),  # finalized / removed / crm (target flag set in the CRM)
    sa.Column("ae_id", sa.Text),
    sa.Column("sdr_id", sa.Text),
    sa.Column("marketer_id", sa.Text),
    sa.Column("territory", sa.Text),
    sa.Column("engagement_score", sa.Float, nullable=False, server_default="0"),
    sa.Column("engagement_count", sa.Integer, nullable=False, server_default="0"),
    _jsonb("intent", "{}"),  # topic -> {provider, score, surging, observed_at}
    sa.Column("last_sales_activity_at", _TS),
    sa.Column("last_marketing_activity_at", _TS),
    sa.Column("updated_at", _TS),  # time of the newest event applied (not the wall clock)
    sa.Column("merged_into", sa.Text),  # the surviving account's key, once merged away in a CRM
    sa.Column("crm_url", sa.Text),  # the account's record page in the CRM (the latest seen)
)

handoffs = sa.Table(
    "handoffs",
    metadata,
    sa.Column("handoff_id", sa.Text, primary_key=True),
    sa.Column("decision_id", sa.Text),
    sa.Column("account_key", sa.Text),
    sa.Column("account_name", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("in_tal", sa.Boolean),
    sa.Column("signal", sa.Text),
    sa.Column("assignee_id", sa.Text),
    sa.Column("assignee_role", sa.Text),
    sa.Column("crm_url", sa.Text),  # the record the handoff is about
    _jsonb("notified_ids", "[]"),
    _jsonb("explanation", "[]"),
    _jsonb("context", "{}"),
    sa.Column("decided_at", _TS),
    sa.Column("sort_at", _TS, nullable=False),  # decided_at, or the SLA start until it is known
    sa.Column("sla_status", sa.Text),  # running / warning / breached / escalated / met
    sa.Column("sla_outcome", sa.Text),  # running / met / breached
    sa.Column("sla_started_at", _TS),
    sa.Column("sla_deadline", _TS),
    sa.Column("sla_allowed_seconds", sa.Integer),
    sa.Column("sla_policy_version", sa.Text),
    sa.Column("outcome_at", _TS),
    sa.Column("first_touch_at", _TS),
    sa.Column("escalation_level", sa.Integer),
    sa.Column("acknowledged_at", _TS),
    # Actions on the handoff (accept, reject, hand on, assign...): the latest one taken.
    sa.Column("action_status", sa.Text),  # assigned / acknowledged / accepted / unassigned
    sa.Column("last_action", sa.Text),
    sa.Column("last_action_by", sa.Text),
    sa.Column("last_action_via", sa.Text),
    sa.Column("last_action_at", _TS),
)
sa.Index("handoffs_sort", handoffs.c.sort_at, handoffs.c.handoff_id)
for _column in ("account_key", "tier", "signal", "assignee_id", "sla_outcome"):
    sa.Index(
        f"handoffs_by_{_column}", handoffs.c[_column], handoffs.c.sort_at, handoffs.c.handoff_id
    )

# What the metrics read of a handoff, with the columns PostgreSQL computes on every write
# (migration 0006: stored generated columns): when it was handed off (the decision, else the
# clock's start), the assignee's team, seconds from handoff to first touch. Kept apart from
# `handoffs`, so the projections' and the API's rows stay as they were.
handoff_measures = sa.table(
    "handoffs",
    sa.column("tier", sa.Text),
    sa.column("signal", sa.Text),
    sa.column("sla_outcome", sa.Text),
    sa.column("outcome_at", _TS),
    sa.column("first_touch_at", _TS),
    sa.column("handed_off_at", _TS),  # coalesce(decided_at, sla_started_at, sort_at)
    sa.column("team", sa.Text),  # marketing for a marketer or marketing assignee, else sales
    sa.column("touch_seconds", sa.Float),  # first_touch_at - handed_off_at, in seconds
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text),
    sa.Column("urgency", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("summary", sa.Text),
    sa.Column("account_key", sa.Text),
    sa.Column("account_name", sa.Text),
    sa.Column("handoff_id", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("signal", sa.Text),
    sa.Column("crm_url", sa.Text),
    _jsonb("recipient_ids", "[]"),
    _jsonb("channel_ids", "[]"),
    sa.Column("requested_at", _TS),
    sa.Column("sort_at", _TS, nullable=False),  # requested_at, or the first delivery until known
)
sa.Index("alerts_sort", alerts.c.sort_at, alerts.c.alert_id)
for _column in ("account_key", "kind"):
    sa.Index(f"alerts_by_{_column}", alerts.c[_column], alerts.c.sort_at, alerts.c.alert_id)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("recipient_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),  # "none" when no channel could be chosen
    sa.Column("status", sa.Text, nullable=False),  # delivered / failed
    sa.Column("destination", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("permanent", sa.Boolean),
    sa.Column("at", _TS, nullable=False),
)

# The alerts delivered on each channel, with the alert's sort time: one row per alert and
# channel it has a delivery on, kept by triggers (migration 0013) for the channel's listing.
alert_channels = sa.Table(
    "alert_channels",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("sort_at", _TS, nullable=False),
)
sa.Index(
    "alert_channels_listing",
    alert_channels.c.channel,
    alert_channels.c.sort_at,
    alert_channels.c.alert_id,
)

deals = sa.Table(
    "deals",
    metadata,
    sa.Column("deal_id", sa.Text, primary_key=True),  # "<crm>:<crm id>"
    sa.Column("account_key", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("stage", sa.Text),
    sa.Column("amount", sa.Float),
    sa.Column("currency", sa.Text),
    sa.Column("is_closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_won", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("owner_id", sa.Text),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("closed_at", _TS),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("merged_into", sa.Text),  # the surviving deal's id: a merged deal counts once
    sa.Column("deleted_at", _TS),  # deleted in the CRM (and not restored since): not counted
)

# CRM accounts by CRM id: how a merge of CRM records (named by CRM id) finds the accounts it
# joins, whichever of the merge and the records' upserts arrives first.
crm_accounts = sa.Table(
    "crm_accounts",
    metadata,
    sa.Column("crm", sa.Text, primary_key=True),
    sa.Column("crm_id", sa.Text, primary_key=True),
    sa.Column("account_key", sa.Text),  # known once the record was upserted
    sa.Column("merged_into", sa.Text),  # the winner's CRM id, once merged away
)
sa.Index(
    "crm_accounts_merged_into",
    crm_accounts.c.crm,
    crm_accounts.c.merged_into,
    postgresql_where=crm_accounts.c.merged_into.isnot(None),
)

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("account_key", sa.Text, nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("rank", sa.SmallInteger, nullable=False),  # cause before effect at equal times
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text),
    _jsonb("data", "{}"),
)
sa.Index(
    "timeline_account", timeline.c.account_key, timeline.c.at, timeline.c.rank, timeline.c.entry_id
)

# Roll-ups of raw rows past their retention (retention.py): each account's activity per team
# and day (its first and last time, what the coverage metric needs), deliveries per day.
activity_days = sa.Table(
    "activity_days",
    metadata,
    sa.Column("account_key", sa.Text, primary_key=True),
    sa.Column("team", sa.Text, primary_key=True),  # sales / marketing
    sa.Column("day", sa.Date, primary_key=True),  # UTC
    sa.Column("first_at", _TS, nullable=False),
    sa.Column("last_at", _TS, nullable=False),
)

delivery_days = sa.Table(
    "delivery_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),  # UTC
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, primary_key=True),
    sa.Column("deliveries", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
)

# Each action asked for on a handoff (any channel) and the router's answer (migration 0009).
handoff_action_requests = sa.Table(
    "handoff_action_requests",
    metadata,
    sa.Column("action_id", sa.Text, primary_key=True),
    sa.Column("handoff_id", sa.Text, nullable=False),
    sa.Column("account_key", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("via", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # requested, taken, refused
    sa.Column("hand_on_to", sa.Text),
    sa.Column("target_id", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("code", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("assignee_id", sa.Text),
    sa.Column("requested_at", _TS),
    sa.Column("decided_at", _TS),
)

# The metrics per UTC day, kept by triggers (migration 0010) in the transaction that writes the
# handoff, deal or account: handoffs made and SLA verdicts reached per day, tier, signal and
# team; deals opened and closed per day, tier and TAL membership, with what each deal was
# counted as (so an account's change takes back exactly what its deals had added).
handoff_days = sa.Table(
    "handoff_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),  # UTC
    sa.Column("tier", sa.Text, primary_key=True),
    sa.Column("signal", sa.Text, primary_key=True),
    sa.Column("team", sa.Text, primary_key=True),
    sa.Column("handoffs", sa.Integer, nullable=False),  # made that day (by handed_off_at)
    sa.Column("touched", sa.Integer, nullable=False),
    sa.Column("met", sa.Integer, nullable=False),
    sa.Column("resolved", sa.Integer, nullable=False),
    sa.Column("verdicts_met", sa.Integer, nullable=False),  # reached that day (by outcome_at)
    sa.Column("verdicts_breached", sa.Integer, nullable=False),
    sa.Column("open_breaches", sa.Integer, nullable=False),  # breached, still without a touch
)

# Histograms of the touch times per UTC month, kept by a trigger (migration 0012): touched
# handoffs per month (of the handoff), tier, signal, team and bucket (touch_bucket: an eighth
# of a doubling of seconds, buckets numbered in value order).
handoff_touch_months = sa.Table(
    "handoff_touch_months",
    metadata,
    sa.Column("month", sa.Date, primary_key=True),  # its first day (UTC)
    sa.Column("tier", sa.Text, primary_key=True),
    sa.Column("signal", sa.Text, primary_key=True),
    sa.Column("team", sa.Text, primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("touched", sa.Integer, nullable=False),
)

deal_counts = sa.Table(
    "deal_counts",
    metadata,
    sa.Column("deal_id", sa.Text, primary_key=True),
    sa.Column("tier", sa.Text, nullable=False),  # the account's survivor's, else its own, else 3
    sa.Column("in_tal", sa.Boolean, nullable=False),
    sa.Column("opened_on", sa.Date),  # open deals: the UTC day they were created
    sa.Column("closed_on", sa.Date),  # closed deals: the UTC day they closed
    sa.Column("won", sa.Boolean, nullable=False),
    sa.Column("amount", sa.Numeric, nullable=False),  # no amount counts as 0
)

deal_days = sa.Table(
    "deal_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),  # UTC
    sa.Column("tier", sa.Text, primary_key=True),
    sa.Column("in_tal", sa.Boolean, primary_key=True),
    sa.Column("opened", sa.Integer, nullable=False),
    sa.Column("opened_amount", sa.Numeric, nullable=False),
    sa.Column("closed", sa.Integer, nullable=False),
    sa.Column("won", sa.Integer, nullable=False),
    sa.Column("won_amount", sa.Numeric, nullable=False),
)

READ_MODELS = (
    accounts,
    handoffs,
    alerts,
    alert_deliveries,
    deals,
    timeline,
    crm_accounts,
    handoff_action_requests,
    people_availability,  # tandem.people's run-time availability (tandem_shared.availability)
)
# Derived from read models, not projected from topics: a rebuild empties them too (the metric
# aggregates fill again as the replay writes the rows; retention's roll-ups as it runs).
ROLL_UPS = (activity_days, delivery_days)
METRIC_DAYS = (handoff_days, handoff_touch_months, deal_counts, deal_days)

# ---- records of the gateway itself: kept by `rebuild` ----------------------------------------

tal_entries = sa.Table(
    "tal_entries",
    metadata,
    sa.Column("account_key", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("suggested_tier", sa.Text, nullable=False),
    sa.Column("proposal_reason", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("fit_score", sa.Float),
    _jsonb("intent", "[]"),
    sa.Column("ae_id", sa.Text),
    sa.Column("sdr_id", sa.Text),
    sa.Column("marketer_id", sa.Text),
    sa.Column("territory", sa.Text),
    _jsonb("approvals", "[]"),  # [[side, person id], ...]
    sa.Column("updated_at", _TS, nullable=False),
)

tal_history = sa.Table(
    "tal_history",
    metadata,
    sa.Column("account_key", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("side", sa.Text),
    sa.Column("tier", sa.Text),
)

# Which consumer group the projections read with: a rebuild switches to a fresh one, which
# starts at the beginning of every topic on any broker (no offset reset needed).
projection_state = sa.Table(
    "projection_state",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("group_id", sa.Text, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", _TS),
)
