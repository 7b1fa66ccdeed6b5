"""The W3C trace context of the routing decision that started each clock.

The timer fires a clock minutes or hours later from its row; with this it continues the
handoff's trace instead of starting an unconnected one.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a default: adding it rewrites no rows and takes no long lock.
    # Clocks started before it fire in a trace of their own, as they did.
    op.add_column("clocks", sa.Column("trace_context", JSONB))


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
