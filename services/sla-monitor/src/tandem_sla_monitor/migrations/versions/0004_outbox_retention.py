"""Published outbox rows kept for a while, and the offsets the broker acknowledged for them.

Revision ID: 0004
"""

from tandem_shared.outbox import create_retention_tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_retention_tables()


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
