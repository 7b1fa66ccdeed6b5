"""The router's tables (its own schema: the engine's search_path names it, so none here)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = sa.MetaData()

_now = sa.func.now()

account_states = sa.Table(
    "account_states",
    metadata,
    sa.Column("account_key", sa.Text, primary_key=True),
    sa.Column("state", JSONB, nullable=False),  # domain.model.AccountState
    # Denormalized from `state` so matching can search by index instead of loading every account.
    sa.Column("name", sa.Text),
    sa.Column("match_domains", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("crm_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

round_robin_pools = sa.Table(
    "round_robin_pools",
    metadata,
    sa.Column("pool_id", sa.Text, primary_key=True),
    sa.Column("state", JSONB, nullable=False),  # domain.model.PoolState
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

handoffs = sa.Table(
    "handoffs",
    metadata,
    sa.Column("handoff_id", sa.Text, primary_key=True),
    sa.Column("account_key", sa.Text),
    sa.Column("assignee_id", sa.Text, nullable=False),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("signal", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # open | closed
    sa.Column("decision_id", sa.Text, nullable=False),  # the latest decision (reassignments)
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("status IN ('open', 'closed')", name="handoffs_status"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("handoff_id", sa.Text, nullable=False),
    sa.Column("account_key", sa.Text),
    sa.Column("rule_set_version", sa.Text, nullable=False),
    sa.Column("assignee_id", sa.Text, nullable=False),
    sa.Column("explanation", JSONB, nullable=False),  # the trail, one line per step
    sa.Column("routing", JSONB, nullable=False),  # the RoutingDecided payload as published
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)

routed_events = sa.Table(
    "routed_events",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),  # processing order
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("account_key", sa.Text),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),  # the decision's `now`
)
