"""The Alerts schema's tables (SQLAlchemy Core, no schema: the search path picks `alerts`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

NOW = sa.func.now()

# The requests themselves: a delivery renders from them at send time, a digest regroups them.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("request_event_id", sa.Text, nullable=False),
    sa.Column("account_key", sa.Text),
    sa.Column("handoff_id", sa.Text),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    # W3C traceparent/tracestate of the request, restored when the delivery worker sends.
    sa.Column("trace_context", JSONB),
)
sa.Index("alerts_handoff", alerts.c.handoff_id, postgresql_where=alerts.c.handoff_id.isnot(None))

# One row per (alert, recipient, channel): the unique key is what makes a notification happen once.
# Status: pending (due_at says when), deferred (waits for the recipient's digest), sent, failed.
# Deferred rows are the digest queue, so a queued item and its delivery can never disagree.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("alert_id", sa.Text, nullable=False),
    sa.Column("recipient_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text),  # None for a recipient no channel could be chosen for
    sa.Column("destination", sa.Text),
    sa.Column("on_behalf_of", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True)),
    # Lower first at a destination: by urgency, then real-time before bulk (domain.plan.priority).
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("coalesced", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("slack_ts", sa.Text),
    sa.Column("slack_channel", sa.Text),  # the conversation Slack posted in (a DM: D...)
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    # Set when a lease takes it to send, cleared with its outcome: still set under a later
    # lease, the earlier sender may have sent it (delivery.py looks before sending again).
    sa.Column("sending_since", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.CheckConstraint(
        "status IN ('pending', 'deferred', 'sent', 'failed')", name="deliveries_status"
    ),
)
sa.Index(
    "deliveries_due",
    deliveries.c.due_at,
    deliveries.c.channel,
    deliveries.c.destination,
    postgresql_where=deliveries.c.status == "pending",
)
sa.Index(
    "deliveries_digest_queue",
    deliveries.c.recipient_id,
    postgresql_where=deliveries.c.status == "deferred",
)
sa.Index("deliveries_alert", deliveries.c.alert_id)
# The rows of one coalesced summary, found by its ts when an action updates the message.
sa.Index(
    "deliveries_slack_summary",
    deliveries.c.slack_ts,
    postgresql_where=deliveries.c.coalesced & deliveries.c.slack_ts.isnot(None),
)

# Every send attempt, successful or not: the audit trail behind a delivered or failed event.
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("delivery_id", sa.BigInteger, sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),  # sent, retry, failed
    sa.Column("error", sa.Text),
    sa.Column("coalesced", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("delivery_attempts_delivery", delivery_attempts.c.delivery_id)

# Pacing and circuit state of one Slack channel / user / mail address. The lease makes one worker
# at a time the sender of a destination, so pacing and the breaker see every send.
destinations = sa.Table(
    "destinations",
    metadata,
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("destination", sa.Text, primary_key=True),
    sa.Column("pacer", JSONB),
    sa.Column("circuit", JSONB),
    sa.Column("leased_until", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
)

# When each person last got a digest; the lease lets one worker at a time build theirs.
digests = sa.Table(
    "digests",
    metadata,
    sa.Column("recipient_id", sa.Text, primary_key=True),
    sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("leased_until", sa.DateTime(timezone=True)),
)
