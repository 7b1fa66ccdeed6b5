"""A delivery taken by a lease to be sent is marked until its outcome is recorded: one still
marked when a later lease takes it was perhaps sent by a sender that died before recording, and
for Slack the next sender looks for it in the conversation before posting it again.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("sending_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
