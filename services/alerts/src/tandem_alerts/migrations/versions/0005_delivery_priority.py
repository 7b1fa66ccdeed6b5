"""Deliveries carry their alert's urgency, so a destination sends urgent ones first.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("priority", sa.SmallInteger, nullable=False, server_default="1"),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
