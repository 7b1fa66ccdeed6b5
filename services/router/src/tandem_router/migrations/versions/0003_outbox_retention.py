"""Published outbox rows kept for a while, and the offsets the broker acknowledged for them.

Revision ID: 0003
"""

from tandem_shared.outbox import create_retention_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_retention_tables()


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
