"""The SLA monitor's own tables (the schema comes from the connection's search_path)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = sa.MetaData()

# One row per handoff: its current clock. `clock` is the serialized SlaClock; the other
# columns repeat what queries filter on. `next_due_at` is the only timer there is.
clocks = sa.Table(
    "clocks",
    metadata,
    sa.Column("handoff_id", sa.Text, primary_key=True),
    sa.Column("decision_id", sa.Text, nullable=False),
    sa.Column("assignee_id", sa.Text, nullable=False),
    sa.Column("account_key", sa.Text),
    sa.Column("contact_email", sa.Text),  # lower-cased
    sa.Column("team_ids", ARRAY(sa.Text), nullable=False),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("signal", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("met_at", sa.DateTime(timezone=True)),  # the first touch, met in time or not
    sa.Column("next_due_at", sa.DateTime(timezone=True)),
    sa.Column("clock", JSONB, nullable=False),
    # The W3C context (traceparent, tracestate) of the decision that started the clock.
    sa.Column("trace_context", JSONB),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
sa.Index("clocks_due", clocks.c.next_due_at, postgresql_where=clocks.c.next_due_at.isnot(None))
sa.Index("clocks_account", clocks.c.account_key)
sa.Index("clocks_contact", clocks.c.contact_email)
sa.Index("clocks_started", clocks.c.started_at)

# Clocks a later routing decision for the same handoff replaced (reassignment), for audit.
superseded_clocks = sa.Table(
    "superseded_clocks",
    metadata,
    sa.Column("decision_id", sa.Text, primary_key=True),
    sa.Column("handoff_id", sa.Text, nullable=False, index=True),
    sa.Column("superseded_by", sa.Text, nullable=False),
    sa.Column("clock", JSONB, nullable=False),
    sa.Column(
        "superseded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# Touches kept for decisions that have not arrived yet (out-of-order delivery).
early_activities = sa.Table(
    "early_activities",
    metadata,
    sa.Column("activity_id", sa.Text, primary_key=True),
    sa.Column("account_key", sa.Text),
    sa.Column("contact_email", sa.Text),  # lower-cased
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activity", JSONB, nullable=False),
    sa.Column(
        "stored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
sa.Index("early_activities_account", early_activities.c.account_key, early_activities.c.occurred_at)
sa.Index("early_activities_contact", early_activities.c.contact_email)
sa.Index("early_activities_stored", early_activities.c.stored_at)
