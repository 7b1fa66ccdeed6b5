"""The outbox and inbox of the Ingest schema.

Revision ID: 0001
"""

from tandem_shared.outbox import create_runtime_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_runtime_tables("ingest")


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
