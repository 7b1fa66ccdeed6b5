"""Published outbox rows kept for a while, and the offsets the broker acknowledged for them.

Revision ID: 0005
"""

from tandem_shared.outbox import create_retention_tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_retention_tables()


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
