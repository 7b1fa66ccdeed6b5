"""The tables of handoff actions in Slack (migration 0005)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from tandem_alerts.adapters.tables import metadata

_TS = sa.DateTime(timezone=True)

# Where each handoff stands, as the router's outcomes said: the first check of a click.
handoff_states = sa.Table(
    "handoff_states",
    metadata,
    sa.Column("handoff_id", sa.Text, primary_key=True),
    sa.Column("assignee_id", sa.Text),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("accepted_by", sa.Text),
    sa.Column("updated_at", _TS, nullable=False),
)

# A click sent to the router, and the message it came from (updated once the router answers).
slack_actions = sa.Table(
    "slack_actions",
    metadata,
    sa.Column("action_id", sa.Text, primary_key=True),
    sa.Column("handoff_id", sa.Text, nullable=False),
    sa.Column("alert_id", sa.Text),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("slack_user_id", sa.Text, nullable=False),
    sa.Column("channel_id", sa.Text),
    sa.Column("message_ts", sa.Text),
    sa.Column("requested_at", _TS, nullable=False),
)

# Slack calls decided in a transaction and made after it commits (at most once each).
slack_calls = sa.Table(
    "slack_calls",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("arguments", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
)

# Email action links used (single use: the first POST records the link, a second finds it).
email_action_links = sa.Table(
    "email_action_links",
    metadata,
    sa.Column("link_id", sa.Text, primary_key=True),
    sa.Column("action_id", sa.Text, nullable=False),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("handoff_id", sa.Text, nullable=False),
    sa.Column("used_at", _TS, nullable=False),
)
