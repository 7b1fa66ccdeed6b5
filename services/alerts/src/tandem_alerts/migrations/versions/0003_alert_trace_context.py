"""The W3C trace context of each alert request, so its later send continues the same trace.

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
    op.add_column("alerts", sa.Column("trace_context", JSONB))


def downgrade() -> None:
    op.drop_column("alerts", "trace_context")
